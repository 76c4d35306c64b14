#pragma once
// Where events come from, where /publish sends them and where history is kept: Redis (pub/sub
// across instances, Streams for history), or the process itself in standalone mode. Everything
// here runs on the control loop.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/core/history.hpp"
#include "ssegw/redis/resp.hpp"

namespace ssegw {

class event_sink;

/// One Redis Cluster shard primary's links (cluster mode).
struct cluster_link {
    std::string address;
    bool connected = false;
    std::size_t channels = 0;
    std::uint64_t reconnects = 0;
};

struct broker_stats {
    bool connected = false;
    std::uint64_t reconnects = 0;
    std::uint64_t subscribed_channels = 0;
    std::uint64_t protocol_errors = 0;
    std::uint64_t epoch_changes = 0;    ///< history epochs this process saw begin
    std::uint64_t tls_failures = 0;     ///< failed TLS handshakes, both links
    std::string address;                ///< host:port of the Redis the links connect to
    std::uint64_t failovers = 0;        ///< Sentinel mode: primary changes seen
    std::string sentinel;               ///< Sentinel mode: host:port of the sentinel asked
    std::uint64_t sentinel_changes = 0; ///< moves to the next sentinel (one stopped answering)
    bool cluster = false;               ///< Redis Cluster mode: the fields below apply
    std::uint64_t cluster_map_refreshes = 0;
    std::uint64_t cluster_moves = 0;     ///< channels moved to another shard
    std::uint64_t cluster_redirects = 0; ///< commands redirected by MOVED/ASK
    std::vector<cluster_link> cluster_links;
};

class broker {
public:
    /// Completion of a publish: ok, and a short text for the caller (the event's resume
    /// position when published with history, else the receiver count or an error).
    using publish_done = std::function<void(bool ok, std::string detail)>;
    using history_done = std::function<void(history_read)>;
    /// The live feed was lost (false), or is back with every subscription confirmed (true).
    using link_handler = std::function<void(bool up)>;

    virtual ~broker() = default;
    /// Starts the feed: from now on events go to `sink` (which must outlive the broker). Given
    /// here rather than at construction because the sink, the router, is built on the broker.
    virtual void start(event_sink& sink) = 0;
    virtual void stop() = 0;

    /// The process needs (or no longer needs) events of an internal channel name.
    virtual void want(const std::string& channel, bool wanted) = 0;

    /// Publishes a payload to an internal channel name on every instance; with_history appends
    /// it to the channel's history first, in the same atomic step.
    virtual void publish(std::string channel, std::string payload, bool with_history,
                         publish_done done) = 0;

    /// Reads what `channels` hold after `from`; with no position, only where history stands.
    virtual void read_history(std::vector<std::string> channels,
                              std::optional<stream_position> from, history_done done) = 0;

    /// Runs `ready` once the live feed covers every channel given (they were want()ed before):
    /// from then on nothing published to them can be missed, so history can be read.
    virtual void when_subscribed(const std::vector<std::string>& channels,
                                 std::function<void()> ready) = 0;

    /// History moved on from the epoch of `routed` (how far this process had routed it) to
    /// `new_epoch`: Redis failed over, restarted or reloaded its functions. Records what this
    /// process routed beyond the switch as lost, so that resumes from before it are told.
    /// Standalone: nothing to record.
    virtual void epoch_changed(const stream_position& routed, const std::string& new_epoch) {}

    void on_link(link_handler h) { link_ = std::move(h); }

    // ---- control messages (POST /disconnect) ----

    /// A control message for this process: sent by some instance (replayed = false), or read
    /// back from where revocations are kept, after a reconnect or at start (replayed = true).
    using control_handler = std::function<void(std::string_view message, bool replayed)>;
    void on_control(control_handler h) { control_ = std::move(h); }

    /// Sends `message` to every instance sharing the Redis, this one included (through the
    /// control handler). With keep_until (unix seconds) > 0 it is first stored until then and
    /// replayed to instances that start later or whose feed was down when it was sent.
    virtual void send_control(std::string message, std::int64_t keep_until, publish_done done) = 0;

    // ---- Redis commands for components keeping their own data there (presence) ----

    /// A command's reply, or an error text (empty on success), as command_client gives them.
    using command_done = std::function<void(std::optional<reply> result, std::string error)>;
    /// False standalone: there is no Redis to run commands on.
    virtual bool runs_commands() const { return false; }
    /// Runs one command on the Redis primary that holds `key` (Redis Cluster: routed by the
    /// key's slot, following MOVED/ASK; otherwise the one command link). `key` is given apart
    /// from `args` because some commands (FUNCTION LOAD) carry none but must reach that node.
    virtual void run_command(const std::string& key, std::vector<std::string> args,
                             command_done done) {
        done(std::nullopt, "redis unavailable: standalone (no Redis)");
    }

    /// True while events can flow (always, standalone).
    virtual bool ready() const = 0;
    virtual broker_stats stats() const = 0;

protected:
    void link_changed(bool up) {
        if (link_) link_(up);
    }
    void control_received(std::string_view message, bool replayed) {
        if (control_) control_(message, replayed);
    }

private:
    link_handler link_;
    control_handler control_;
};

} // namespace ssegw
