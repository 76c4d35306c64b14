#pragma once
// A shard: one thread running its own io_context, owning its sessions and its channel registry
// outright. Other threads talk to it only by posting to context(); nothing mutable here is
// shared, except the counters (owner-written relaxed atomics) and load().

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ssegw/config/config.hpp"
#include "ssegw/core/control_message.hpp"
#include "ssegw/core/revocation_list.hpp"
#include "ssegw/core/stream_position.hpp"
#include "ssegw/shard/close_reason.hpp"
#include "ssegw/shard/heap_trim.hpp"
#include "ssegw/shard/presence_buffer.hpp"
#include "ssegw/shard/registry.hpp"
#include "ssegw/shard/shard_counters.hpp"
#include "ssegw/sse/routed_event.hpp"

namespace ssegw {

class session;
class shard_set;

class shard {
public:
    /// A shard of `set`, which it tells (on this shard's thread) when a channel appears on or
    /// disappears from it, so the process subscribes to exactly what its sessions need.
    shard(unsigned id, shard_set& set);
    ~shard();
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    unsigned id() const noexcept { return id_; }
    boost::asio::io_context& context() noexcept { return ioc_; }
    shard_set& set() noexcept { return set_; }
    const gateway_config& config() const noexcept { return cfg_; }
    shard_counters& counters() noexcept { return counters_; }
    const shard_counters& counters() const noexcept { return counters_; }

    /// Sessions plus handshakes in progress; read from any thread to pick the least loaded.
    std::size_t load() const noexcept { return load_.load(std::memory_order_relaxed); }

    /// Runs the loop on a thread of its own.
    void start();
    /// Runs the loop on the calling thread until stop(): the server runs shard 0 this way, and
    /// its control work (subscriber, router, listener, admin) shares that loop.
    void run_here();
    /// Stops the loop; pending work is abandoned (call after drain()).
    void stop();
    void join();

    // ---- everything below runs on the shard thread ----

    /// A connection was handed to this shard (any thread): counts toward load() and
    /// max_connections until handshake_failed() or the session's detach().
    void reserve_slot() noexcept;
    /// A handshake ended without becoming a session.
    void handshake_failed(close_reason why) noexcept;

    /// Registers a session that passed its handshake and starts it.
    void attach(const std::shared_ptr<session>& s, frame head);
    /// Called by a session when it closes: unregisters it and releases its slots.
    void detach(session& s, close_reason why);

    /// Queues each event, in order, to every session of this shard that joined its channel.
    void deliver(const std::vector<routed_event_ptr>& batch);

    /// A control message (POST /disconnect, from any instance): records what it revokes and
    /// closes the streams it names, each with `event: disconnect` (data: the reason) and a
    /// jittered retry hint. `replayed` (read back from Redis after a reconnect or at start):
    /// only the streams whose tokens it revokes are closed; a plain disconnect is not replayed.
    void apply_control(const control_message& m, bool replayed, std::int64_t now_unix);
    /// The tokens revoked so far, checked by each handshake of this shard.
    const revocation_list& revocations() const noexcept { return revocations_; }

    /// Closes every stream with a jittered retry hint, spread evenly over `window`. Keeps
    /// watching until the window ends, so a stream that attaches late (its handshake passed
    /// before the drain began and was still waiting for history) is sent away too.
    void drain(std::chrono::milliseconds window);

    std::uint32_t now_tick() const noexcept { return tick_count_; }
    /// Brings `s`'s next visit forward to `tick` if it was due later: a write started between
    /// visits must be checked at its stall deadline, not at the idle stream's heartbeat.
    void visit_by(const session& s, std::uint32_t tick) noexcept;
    /// The idle keep-alive comment, shared by every session of the shard.
    const frame& heartbeat() const noexcept { return heartbeat_; }
    /// "retry: N" with N jittered in [retry_ms, 2 * retry_ms): clients told to come back
    /// do not all come back in the same instant.
    frame retry_hint();
    /// The opening bytes of a stream that carries no CORS headers (nearly all): built once by
    /// the handshake, which owns their text, and shared by every such stream of this shard
    /// instead of built and allocated per connection.
    frame& plain_stream_head() noexcept { return plain_stream_head_; }
    /// The position block (make_position_frame) of `at`, shared: the streams that start
    /// while nothing is published all stand at the same place, and each would otherwise hold
    /// its own ~130-byte copy for its whole idle life. Null when the id cannot be one.
    frame position_frame(const stream_position& at);
    /// A uniform value in [0, bound) from this shard's private generator.
    std::uint32_t jitter(std::uint32_t bound) noexcept;
    std::size_t channel_count() const noexcept { return registry_.channel_count(); }

private:
    /// ioc_.run() until stopped; a handler that throws is logged, the loop goes on.
    void run_loop();
    void schedule_tick();
    void on_tick();
    void drain_step(std::size_t per_step, std::chrono::steady_clock::time_point until);

    unsigned id_;
    shard_set& set_;
    const gateway_config& cfg_;
    boost::asio::io_context ioc_;
    boost::asio::steady_timer tick_timer_;
    boost::asio::steady_timer drain_timer_;
    /// Streams opened and closed since the last presence report (presence.enabled).
    presence_buffer presence_;
    std::thread thread_;
    registry registry_;
    std::vector<std::shared_ptr<session>> sessions_;
    /// Per slot of sessions_, the tick its session asked to be visited at (session::on_tick()):
    /// the tick scans these 4 bytes per stream and touches only the streams due, instead of
    /// every session object every second (111 ns per stream per second, the bulk of an idle
    /// shard's CPU: docs/benchmarks.md "Fixed costs across the curves").
    std::vector<std::uint32_t> visit_at_;
    revocation_list revocations_;
    frame heartbeat_;
    frame plain_stream_head_;
    std::string position_text_; ///< position_frame()'s last position, and its block
    frame position_frame_;
    shard_counters counters_;
    std::atomic<std::size_t> load_{0};
    heap_trim heap_trim_; ///< hands a wave of handshakes' freed heap back to the OS
    std::uint32_t tick_count_ = 0;
    std::uint64_t rng_state_;
};

} // namespace ssegw
