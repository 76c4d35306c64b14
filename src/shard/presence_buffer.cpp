#include "ssegw/shard/presence_buffer.hpp"

#include <string_view>

namespace ssegw {

namespace {

/// "topic:a", "topic:b" (and the user and broadcast channels, left out) -> "a,b".
std::string topics_of(const channel_list& channels) {
    constexpr std::string_view topic = "topic:";
    std::string out;
    for (const auto ch : channels) {
        if (!ch.starts_with(topic)) continue;
        if (!out.empty()) out += ',';
        out.append(ch.substr(topic.size()));
    }
    return out;
}

} // namespace

presence_buffer::presence_buffer(boost::asio::io_context& ioc, std::chrono::milliseconds interval,
                                 bool lifecycle, report_fn report)
    : timer_(ioc), interval_(interval), lifecycle_(lifecycle), report_(std::move(report)) {}

void presence_buffer::opened(std::string_view user, const channel_list& channels) {
    changed(user, +1);
    if (lifecycle_) records_.push_back({true, std::string(user), topics_of(channels), {}, 0});
}

void presence_buffer::closed(std::string_view user, const channel_list& channels, close_reason why,
                             std::uint32_t duration_seconds) {
    changed(user, -1);
    if (lifecycle_)
        records_.push_back({false, std::string(user), topics_of(channels),
                            std::string(close_reason_names[static_cast<std::size_t>(why)]),
                            duration_seconds});
}

void presence_buffer::changed(std::string_view user, std::int32_t delta) {
    deltas_[std::string(user)] += delta;
    arm();
}

void presence_buffer::arm() {
    if (armed_) return;
    armed_ = true;
    timer_.expires_after(interval_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        armed_ = false;
        if (!ec) flush();
    });
}

void presence_buffer::flush() {
    presence_report report;
    report.deltas.reserve(deltas_.size());
    // A connect and a disconnect of the same user within the interval cancel out: nothing to
    // tell anyone.
    for (auto& [user, delta] : deltas_)
        if (delta != 0) report.deltas.emplace_back(user, delta);
    // Released, not cleared: clear() keeps the bucket array, 8 bytes per user of the largest
    // wave of connections ever seen, for the life of the process.
    std::unordered_map<std::string, std::int32_t>().swap(deltas_);
    report.lifecycle = std::move(records_);
    records_.clear();
    if (report.deltas.empty() && report.lifecycle.empty()) return;
    report_(std::move(report));
}

} // namespace ssegw
