#include "ssegw/shard/shard_set.hpp"

#include <boost/asio/post.hpp>

namespace ssegw {

shard_set::shard_set(unsigned count, const gateway_config& cfg)
    : cfg_(cfg), users_(cfg.server.max_connections_per_user) {
    for (unsigned id = 0; id < count; ++id) {
        shards_.push_back(std::make_unique<shard>(id, *this));
        ptrs_.push_back(shards_.back().get());
    }
}

shard_set::~shard_set() {
    stop();
    join();
}

void shard_set::deliver(unsigned shard_id, std::vector<routed_event_ptr> batch) {
    shard* target = ptrs_[shard_id];
    invoke_on(shard_id, [target, batch = std::move(batch)] { target->deliver(batch); });
}

shard& shard_set::least_loaded() const noexcept {
    shard* best = ptrs_.front();
    for (auto* s : ptrs_)
        if (s->load() < best->load()) best = s;
    return *best;
}

void shard_set::start(interest_sink& interest, history_source* history) {
    // Set before any shard thread exists (and before shard 0 runs): the threads read them.
    interest_ = &interest;
    history_ = history;
    for (unsigned id = 1; id < size(); ++id) ptrs_[id]->start();
}

void shard_set::run() { ptrs_.front()->run_here(); }

void shard_set::stop() {
    for (auto* s : ptrs_) s->stop();
}

void shard_set::join() {
    for (auto* s : ptrs_) s->join();
}

void shard_set::interest_changed(unsigned shard_id, std::string_view channel, bool held) {
    if (interest_ == nullptr) return; // not started (unit tests drive a shard alone)
    boost::asio::post(control(), [sink = interest_, shard_id, channel = std::string(channel),
                                  held] { sink->on_interest(shard_id, channel, held); });
}

void shard_set::presence_changed(unsigned shard_id, presence_report report) {
    if (presence_ == nullptr) return;
    boost::asio::post(control(),
                      [sink = presence_, shard_id, report = std::move(report)]() mutable {
                          sink->on_presence(shard_id, std::move(report));
                      });
}

void shard_set::request_history(std::vector<std::string> channels,
                                std::optional<stream_position> from,
                                history_source::deliver_fn deliver, std::function<bool()> alive) {
    boost::asio::post(control(), [source = history_, channels = std::move(channels),
                                  from = std::move(from), deliver = std::move(deliver),
                                  alive = std::move(alive)]() mutable {
        source->request(std::move(channels), std::move(from), std::move(deliver), std::move(alive));
    });
}

} // namespace ssegw
