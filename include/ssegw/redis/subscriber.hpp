#pragma once
// The one Redis pub/sub connection of a process. It owns a desired set of channels and
// patterns and keeps the server in step with it across reconnects; callers only say what they
// want, never what to send.

#include "ssegw/core/redis_url.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

namespace ssegw {

/// Callbacks, all invoked on the subscriber's io_context thread, never after stop().
struct subscriber_handlers {
    /// A published message; for pattern subscriptions `channel` is the concrete channel.
    std::function<void(std::string_view channel, std::string_view payload)> on_message;
    /// true once a (re)connection is up and every subscription sent at connect time is
    /// confirmed; false, once, when a link that was reported up is lost.
    std::function<void(bool connected)> on_state;
    /// Each SUBSCRIBE confirmation (optional): the point after which messages on the channel
    /// are delivered, which is what a history catch-up must wait for.
    std::function<void(std::string_view channel)> on_subscribed;
    /// After the messages of one read from Redis (optional): where a batch of them ends.
    std::function<void()> on_burst_end;
    /// Sharded mode (optional): the server refused a channel's SSUBSCRIBE (`why` is its error,
    /// e.g. MOVED) or dropped the channel itself (its slot moved). The channel stays desired
    /// here but is no longer held; the owner decides where it goes.
    std::function<void(std::string_view channel, std::string_view why)> on_lost;
};

struct subscriber_options {
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    /// PING period; the link counts as dead when nothing arrives for two periods (this also
    /// bounds resolve + connect + handshake).
    std::chrono::seconds ping_interval{10};
    /// Accept only a server whose ROLE is master (Sentinel mode).
    bool require_primary = false;
    /// Redis Cluster: channels are sharded (SSUBSCRIBE / SUNSUBSCRIBE / smessage, one channel
    /// per command since a command may name only one slot); error replies and unrequested
    /// sunsubscribes go to on_lost instead of dropping the link. Patterns are not available.
    bool sharded = false;
    /// Prefix of the log lines.
    std::string log_name = "redis subscriber";
};

/// Single-threaded: construct, call and destroy it on the thread running its io_context.
/// Destroying it (or stop()) with operations pending is safe: completions still queued find
/// a stopped implementation and do nothing.
class subscriber {
public:
    /// Does no I/O until start().
    subscriber(boost::asio::io_context& io, redis_endpoint endpoint, subscriber_options options,
               subscriber_handlers handlers);
    ~subscriber();
    subscriber(const subscriber&) = delete;
    subscriber& operator=(const subscriber&) = delete;

    /// Starts connecting (once); reconnects with backoff until stop(). An endpoint with an
    /// empty host waits for retarget().
    void start();
    /// Connects to `endpoint` from now on (connection::retarget): the subscriptions follow.
    void retarget(redis_endpoint endpoint, bool now);
    /// host:port it connects to ("" while it has none).
    std::string address() const;
    /// Closes the connection and cancels timers; no callback runs after it returns.
    void stop();

    /// Adds to / removes from the desired set. Changes made in one handler are sent on the next
    /// turn of the io_context as one pipelined batch (commands of <= 512 names); a subscribe and
    /// unsubscribe of the same name in one batch cancel out. Only channels the server confirmed
    /// are ever unsubscribed. Idempotent.
    void subscribe(const std::string& channel);
    void unsubscribe(const std::string& channel);
    void psubscribe(const std::string& pattern);

    /// Link up and the connect-time subscriptions confirmed (what on_state last said).
    bool connected() const;
    /// Channels the server has confirmed on the current connection.
    std::size_t channel_count() const;
    /// The server holds this channel on the current link and nothing sent will drop it: every
    /// message published to it from now on arrives here (until the link is lost).
    bool is_live(const std::string& channel) const;
    /// Reconnection attempts made after losing (or failing to establish) a link.
    std::uint64_t reconnects() const;
    /// Malformed or unexpected data from the server (each one also drops the link).
    std::uint64_t protocol_errors() const;
    std::uint64_t tls_failures() const;
    /// Why the last link went down ("" while none has).
    std::string last_error() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace ssegw
