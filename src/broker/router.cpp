#include "ssegw/broker/router.hpp"

#include <bit>
#include <chrono>
#include <memory>

#include <boost/asio/post.hpp>

#include "ssegw/core/channel.hpp"
#include "ssegw/shard/shard.hpp"
#include "ssegw/sse/routed_event.hpp"

namespace ssegw {

router::router(std::vector<shard*> shards, std::size_t max_event_bytes,
               subscription_change on_change)
    : shards_(std::move(shards)), max_event_bytes_(max_event_bytes),
      on_change_(std::move(on_change)) {}

void router::on_interest(unsigned shard_id, const std::string& channel, bool held) {
    const std::uint64_t bit = std::uint64_t{1} << shard_id;
    if (held) {
        auto [it, inserted] = masks_.try_emplace(channel, 0);
        const bool was_empty = it->second == 0;
        it->second |= bit;
        if (was_empty && on_change_) on_change_(channel, true);
        return;
    }
    auto it = masks_.find(channel);
    if (it == masks_.end()) return;
    it->second &= ~bit;
    if (it->second != 0) return;
    masks_.erase(it);
    if (on_change_) on_change_(channel, false);
}

void router::route(std::string_view channel, std::string_view payload) {
    const auto kind = kind_of(channel);
    if (!kind) {
        count_drop(route_drop::bad_channel);
        return;
    }
    auto& received = received_[static_cast<std::size_t>(*kind)];
    received.store(received.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);

    auto it = masks_.find(std::string(channel));
    if (it == masks_.end()) {
        count_drop(route_drop::no_local_subscriber);
        return;
    }
    auto built = build_frame(payload, max_event_bytes_);
    if (built.dropped) {
        // frame's drop reasons map one-to-one onto the first route_drop values.
        count_drop(static_cast<route_drop>(*built.dropped));
        return;
    }
    auto ev = std::make_shared<const routed_event>(routed_event{
        std::string(channel), std::move(built.bytes), std::chrono::steady_clock::now()});
    for (auto mask = it->second; mask != 0; mask &= mask - 1) {
        auto* target = shards_[static_cast<std::size_t>(std::countr_zero(mask))];
        boost::asio::post(target->context(), [target, ev] { target->deliver(*ev); });
    }
}

std::vector<std::string> router::wanted_channels() const {
    std::vector<std::string> out;
    out.reserve(masks_.size());
    for (const auto& [name, mask] : masks_) out.push_back(name);
    return out;
}

void router::count_drop(route_drop why) noexcept {
    auto& c = dropped_[static_cast<std::size_t>(why)];
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

} // namespace ssegw
