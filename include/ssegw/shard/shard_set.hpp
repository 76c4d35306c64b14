#pragma once
// The shards of the process, their threads, and the few things they share (in the spirit of
// Seastar's sharded<T>): the only way into a shard is invoke_on(), and the only ways out of one
// are the three messages a shard sends to the control loop (interest changes, history requests,
// presence reports).
// The control loop is shard 0's io_context, run on the thread that calls run().

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "ssegw/config/config.hpp"
#include "ssegw/core/history_source.hpp"
#include "ssegw/shard/batch_sink.hpp"
#include "ssegw/shard/interest_sink.hpp"
#include "ssegw/shard/presence_sink.hpp"
#include "ssegw/shard/shard.hpp"
#include "ssegw/shard/user_limiter.hpp"

namespace ssegw {

class shard_set final : public batch_sink {
public:
    /// Creates `count` shards (1..max_shards); no thread runs until start() and run().
    shard_set(unsigned count, const gateway_config& cfg);
    ~shard_set();
    shard_set(const shard_set&) = delete;
    shard_set& operator=(const shard_set&) = delete;

    unsigned size() const noexcept { return static_cast<unsigned>(ptrs_.size()); }
    shard& operator[](unsigned id) noexcept { return *ptrs_[id]; }
    const shard& operator[](unsigned id) const noexcept { return *ptrs_[id]; }
    /// Iterates the shards in id order (metrics, listeners).
    auto begin() const noexcept { return ptrs_.begin(); }
    auto end() const noexcept { return ptrs_.end(); }

    /// Runs f on shard `id`'s thread: in place when called there (shard 0's batches, read on
    /// the control loop, cost no wake-up), else posted.
    template <class F>
    void invoke_on(unsigned id, F&& f) {
        boost::asio::dispatch(ptrs_[id]->context(), std::forward<F>(f));
    }
    /// Runs f(shard&) on every shard's thread. Always posted, to the calling shard too: a
    /// broadcast starts on every shard after the current handler, alike.
    template <class F>
    void invoke_on_all(const F& f) {
        for (auto* s : ptrs_) boost::asio::post(s->context(), [s, f] { f(*s); });
    }

    /// The router's batches: invoke_on(shard_id, deliver the batch there).
    void deliver(unsigned shard_id, std::vector<routed_event_ptr> batch) override;

    /// The shard with the fewest connections (the first of equals); any thread.
    shard& least_loaded() const noexcept;

    /// The control loop (router, Redis links, resume service, listener, admin, signals): shard
    /// 0's loop, so an event for a stream of shard 0 is read and written by the same thread.
    boost::asio::io_context& control() noexcept { return ptrs_.front()->context(); }

    /// Starts shards 1..N-1 on threads of their own. `interest` and `history` (null without
    /// history) receive the shards' messages on the control loop; they are given here, not at
    /// construction, because they live on the control loop this set creates.
    void start(interest_sink& interest, history_source* history);
    /// Where the shards' presence reports go (on the control loop); set before start(), or
    /// they are dropped (presence disabled, unit tests).
    void set_presence_sink(presence_sink* sink) noexcept { presence_ = sink; }
    /// Runs shard 0 (the control loop) on the calling thread until stop().
    void run();
    /// Stops every loop; pending work is abandoned (after drain()).
    void stop();
    void join();

    // ---- what the shards share ----

    const gateway_config& config() const noexcept { return cfg_; }
    user_limiter& users() noexcept { return users_; }
    /// Open streams plus handshakes in progress, all shards: checked against max_connections.
    std::atomic<std::size_t>& connections_total() noexcept { return connections_total_; }
    /// Set once on SIGTERM: new requests get "come back later" (200 + retry + close).
    bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }
    void begin_draining() noexcept { draining_.store(true); }

    // ---- messages from a shard to the control loop (called on the shard's thread) ----

    /// A shard gained its first or lost its last session of a channel.
    void interest_changed(unsigned shard_id, std::string_view channel, bool held);
    /// A shard's presence report (presence_buffer), for the presence sink.
    void presence_changed(unsigned shard_id, presence_report report);
    /// True when streams start by reading what they missed (history.enabled).
    bool has_history() const noexcept { return history_ != nullptr; }
    /// Asks the control loop for a starting stream's history, behind the shard's interest
    /// changes (so the channels are subscribed before the read).
    void request_history(std::vector<std::string> channels, std::optional<stream_position> from,
                         history_source::deliver_fn deliver, std::function<bool()> alive);

private:
    const gateway_config& cfg_;
    user_limiter users_;
    std::atomic<std::size_t> connections_total_{0};
    std::atomic<bool> draining_{false};
    interest_sink* interest_ = nullptr;
    history_source* history_ = nullptr;
    presence_sink* presence_ = nullptr;
    std::vector<std::unique_ptr<shard>> shards_;
    std::vector<shard*> ptrs_;
};

} // namespace ssegw
