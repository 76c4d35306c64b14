#pragma once
// One SSE stream after its handshake: a socket, the channels it joined and the frames waiting to
// be written. Lives on one shard thread for its whole life and is touched only there.
//
// Kept small on purpose (see docs/architecture.md): no timer of its own (the shard's one-second
// tick drives heartbeats, stalls and token expiry), no parser or request buffer, and an empty
// queue most of the time.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "ssegw/metrics/shard_counters.hpp"
#include "ssegw/sse/frame.hpp"

namespace ssegw {

class shard;

class session : public std::enable_shared_from_this<session> {
public:
    session(shard& owner, boost::asio::ip::tcp::socket socket, std::string user,
            std::vector<std::string> channels, std::int64_t expires_at_unix);

    /// Writes the response head and first bytes, then watches for the client leaving.
    void start(frame head);

    /// Queues a frame; writes at once when idle, gathers with what is queued when busy.
    /// A session whose queue would exceed sse.max_queue_bytes is closed as a slow consumer.
    void deliver(const frame& f);

    /// Sends `last` (a retry hint), then closes once it is flushed (or at once if stalled).
    void close_gracefully(const frame& last, close_reason why);

    /// Closes now; idempotent.
    void close(close_reason why);

    /// Called by the shard once a second: heartbeat when idle, stall and expiry checks.
    void on_tick(std::uint32_t now_tick, std::int64_t now_unix);

    const std::string& user() const noexcept { return user_; }
    const std::vector<std::string>& channels() const noexcept { return channels_; }
    bool closed() const noexcept { return closed_; }
    /// Closed, or told to go and flushing its last frame.
    bool leaving() const noexcept { return closed_ || close_after_flush_; }

    /// Position in the shard's session list (swap-and-pop removal).
    std::size_t slot = 0;

private:
    void do_write();
    void on_write(const boost::system::error_code& ec, std::size_t bytes);
    void do_watch();
    void on_watch(const boost::system::error_code& ec);

    shard& shard_;
    boost::asio::ip::tcp::socket socket_;
    std::string user_;
    std::vector<std::string> channels_;
    std::vector<frame> queue_;    ///< waiting for the next write
    std::vector<frame> writing_;  ///< owned by the write in flight
    std::vector<boost::asio::const_buffer> gather_; ///< buffer views of writing_, multi-frame writes
    std::uint64_t queued_bytes_ = 0;
    std::int64_t expires_at_unix_ = 0; ///< token exp; 0 = never
    std::uint32_t last_write_tick_ = 0;
    std::uint32_t write_started_tick_ = 0;
    close_reason pending_reason_ = close_reason::client_gone;
    bool write_in_flight_ = false;
    bool close_after_flush_ = false;
    bool closed_ = false;
    char watch_byte_ = 0;
};

} // namespace ssegw
