#pragma once
// One Redis link: resolve + connect with backoff, the AUTH/SELECT/PING handshake, a write queue,
// a read loop parsing replies, and a watchdog. It keeps a healthy pipe and says when it is up
// and when it went down; what is sent and what the replies mean belong to its owner
// (subscriber, command_client).

#include "ssegw/core/redis_url.hpp"
#include "ssegw/redis/resp.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace ssegw {

struct connection_options {
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    /// Watchdog period (clamped to at least 1 s). Before the handshake completes, and while up
    /// and the owner is awaiting(), the link counts as dead after two periods without a reply;
    /// this also bounds resolve + connect + handshake.
    std::chrono::seconds ping_interval{10};
    /// Send SELECT <db> in the handshake when the endpoint's db is not 0 (pub/sub does not
    /// need it: channels are not per database).
    bool select_db = true;
    /// Batch when busy, write at once when idle: a command sent less than this after the last
    /// write waits for the rest of the window and goes out with everything else sent meanwhile;
    /// otherwise it is written at once. In a reconnect storm each new stream sends SUBSCRIBE
    /// and MGET and each leaving one UNSUBSCRIBE: merged, Redis runs one loop turn per window
    /// instead of one per stream. 0 writes every send() at once.
    std::chrono::microseconds write_coalesce{1000};
    /// Prefix of the log lines ("redis client").
    std::string log_name = "redis connection";
    /// last_error() when the watchdog finds an up link silent for two periods.
    std::string stall_reason = "no reply to PING";
    /// Send ROLE in the handshake and drop the link unless the server says it is the primary
    /// (Sentinel mode: a node that was demoted, or an address a sentinel gave out before a
    /// failover finished, must not be written to or read from).
    bool require_primary = false;
};

/// What the owner of a connection hears from it. Every hook runs on the io_context thread,
/// never after the connection's stop(), and may call stop() or drop the owner: the connection
/// holds the owner (through the weak_ptr it was given) only for the duration of a call.
/// An exception thrown by a hook drops the link ("internal error: ..."), except from on_down,
/// where it is logged.
class connection_owner {
public:
    /// TCP link established and AUTH/SELECT queued: queue the owner's handshake commands with
    /// send(). The barrier PING goes after them, so on_up() means all of them were answered.
    /// They must not include PING.
    virtual void on_open() {}
    /// The barrier PING was answered: the link is usable.
    virtual void on_up() {}
    /// Every reply except those to AUTH, SELECT and the barrier PING, in arrival order
    /// (including error replies on the link before on_up()).
    virtual void on_reply(reply&& r) = 0;
    /// After the replies of one read were handed to on_reply(): the end of a burst.
    virtual void on_burst_end() {}
    /// Once per period while up, after the watchdog check passed: the place to send a probe.
    virtual void on_tick() {}
    /// Whether the owner waits for a reply while up; only then does silence count as death.
    virtual bool awaiting() const { return true; }
    /// The link went down (never called for stop()); a reconnect is already scheduled.
    /// `was_up`: on_up() had been called for this link.
    virtual void on_down(const std::string& reason, bool was_up) {}

protected:
    ~connection_owner() = default;
};

/// Single-threaded: construct, call and destroy it on the thread running its io_context.
/// Destroying it (or stop()) with operations pending is safe: completions still queued find a
/// stopped implementation and do nothing.
class connection {
public:
    /// Does no I/O until start().
    connection(boost::asio::io_context& io, redis_endpoint endpoint, connection_options options,
               std::weak_ptr<connection_owner> owner);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Starts connecting (once); reconnects with backoff until stop(). With an endpoint whose
    /// host is empty it waits for retarget() to name one.
    void start();
    /// Connects to `endpoint` from now on. When it names another host or port, a link to the
    /// old one is dropped ("moved to ..."); with `now` the next attempt starts at once (the new
    /// address is news, not a retry), otherwise after the usual backoff.
    void retarget(redis_endpoint endpoint, bool now);
    /// host:port the connection connects to ("" while it has none).
    std::string address() const;
    /// Closes the link and cancels timers; no hook runs after it returns.
    void stop();

    /// Queues encoded commands (encode_command) for the open link, in order. Returns false,
    /// dropping them, when no link is open.
    bool send(std::string bytes);
    /// Drops the current link (if any) for `reason` and reconnects with backoff.
    void fail(std::string reason);
    /// fail("redis protocol error: " + what), counted in protocol_errors().
    void fail_protocol(const std::string& what);
    /// Restarts the watchdog's silence clock: call when the owner starts awaiting a reply on a
    /// link that was idle.
    void mark_progress();

    /// A link is connected (handshake or up): send() accepts.
    bool open() const;
    /// The handshake completed on the current link.
    bool up() const;
    bool stopped() const;
    /// Replies the connection still awaits for its own handshake commands (AUTH, SELECT, ROLE,
    /// PING).
    std::size_t own_in_flight() const;
    /// Reconnection attempts made after losing (or failing to establish) a link.
    std::uint64_t reconnects() const;
    /// Malformed data from the server, and fail_protocol() calls.
    std::uint64_t protocol_errors() const;
    /// TLS handshakes that failed (rediss://): bad or unverifiable certificates, no common
    /// protocol version, a server that does not speak TLS.
    std::uint64_t tls_failures() const;
    /// Why the last link went down ("" while none has).
    const std::string& last_error() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace ssegw
