#pragma once
// A request/response Redis connection (PUBLISH, FCALL, FUNCTION LOAD, XRANGE ...): commands are
// pipelined in order and replies matched FIFO. Every command completes exactly once, with a
// reply or an error string; nothing waits on a dead link.

#include "ssegw/core/redis_url.hpp"
#include "ssegw/redis/resp.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ssegw {

struct command_client_options {
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    /// The link counts as dead when a command (or the idle PING sent every period) has had no
    /// reply for two periods.
    std::chrono::seconds ping_interval{10};
    /// Accept only a server whose ROLE is master (Sentinel mode).
    bool require_primary = false;
    /// Prefix of the log lines.
    std::string log_name = "redis client";
};

/// Single-threaded: construct, call and destroy it on the thread running its io_context.
class command_client {
public:
    /// `result` is the reply (a Redis error reply included, as kind::error); `error` is empty
    /// on success, the error reply's text for a Redis error, or a transport error:
    /// "redis unavailable" (not connected), "redis busy" (too many in flight),
    /// "redis connection lost: <why>", "redis client stopped" — then `result` is nullopt.
    /// So `error.empty()` means success.
    using completion = std::function<void(std::optional<reply> result, std::string error)>;

    /// Commands in flight at once; more fail with "redis busy".
    static constexpr std::size_t max_in_flight = 10000;

    /// Does no I/O until start(). The link counts as dead when a command (or the idle PING
    /// sent every `ping_interval`) has had no reply for two intervals.
    command_client(boost::asio::io_context& io, redis_endpoint endpoint,
                   std::chrono::milliseconds reconnect_min, std::chrono::milliseconds reconnect_max,
                   std::chrono::seconds ping_interval = std::chrono::seconds(10));
    command_client(boost::asio::io_context& io, redis_endpoint endpoint,
                   command_client_options options);
    /// Stops; commands still pending complete with "redis client stopped" (posted).
    ~command_client();
    command_client(const command_client&) = delete;
    command_client& operator=(const command_client&) = delete;

    /// Starts connecting (once); reconnects with backoff until stop(). An endpoint with an
    /// empty host waits for retarget().
    void start();
    /// Connects to `endpoint` from now on (connection::retarget); commands in flight on a link
    /// that is dropped fail with "redis connection lost".
    void retarget(redis_endpoint endpoint, bool now);
    /// host:port it connects to ("" while it has none).
    std::string address() const;
    /// Closes the link; pending commands complete (posted) with "redis client stopped".
    void stop();

    /// Sends a command (args[0] is its name). `done` runs on the io_context thread: directly
    /// when the reply arrives, posted when the command fails without one, never inline.
    void execute(std::vector<std::string> args, completion done);

    /// Link up and handshake (AUTH, SELECT, PING) answered.
    bool connected() const;
    /// Commands sent or queued and not yet answered.
    std::size_t in_flight() const;
    /// Reconnection attempts made after losing (or failing to establish) a link.
    std::uint64_t reconnects() const;
    std::uint64_t tls_failures() const;
    /// Why the last link went down ("" while none has).
    std::string last_error() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace ssegw
