#pragma once
// Redis Cluster: the process's sharded pub/sub. It reads the slot map (CLUSTER SHARDS) from any
// reachable node, keeps one sharded subscriber and one command link per shard primary, and puts
// each wanted channel on the link of the shard that owns its slot. When a channel is refused
// (MOVED) or dropped by its node (its slot moved: migration, failover), or a link dies, it reads
// the map again and moves the channel; it also re-reads the map periodically. Callers say which
// channels they want, as with the single-server subscriber, and send commands by key.

#include "ssegw/core/redis_url.hpp"
#include "ssegw/redis/command_client.hpp"
#include "ssegw/redis/subscriber.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ssegw {

struct cluster_subscriber_options {
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    std::chrono::seconds ping_interval{10};
    /// How often the slot map is read again when nothing prompted it.
    std::chrono::milliseconds refresh_interval{10000};
};

/// One shard primary's links, for metrics.
struct cluster_link_stats {
    std::string address;
    bool connected = false;
    std::size_t channels = 0; ///< channels confirmed on its pub/sub link
    std::uint64_t reconnects = 0;
};

/// Single-threaded: construct, call and destroy it on the thread running its io_context.
class cluster_subscriber {
public:
    /// `seeds`: nodes to read the slot map from (each with the credentials and TLS settings
    /// every node is reached with). Handlers as for subscriber; on_state reports the whole
    /// feed: true once a slot map is known and every shard link is up with its channels
    /// confirmed, false when that stops being so. on_lost is not called (moves are handled).
    cluster_subscriber(boost::asio::io_context& io, std::vector<redis_endpoint> seeds,
                       cluster_subscriber_options options, subscriber_handlers handlers);
    ~cluster_subscriber();
    cluster_subscriber(const cluster_subscriber&) = delete;
    cluster_subscriber& operator=(const cluster_subscriber&) = delete;

    void start();
    void stop();

    void subscribe(const std::string& channel);
    void unsubscribe(const std::string& channel);

    /// Runs a command on the primary owning `key`'s slot; a MOVED or ASK reply makes it read the
    /// map again and run the command once more where the reply points. Completion as for
    /// command_client::execute; "redis unavailable" while no map is known.
    void execute(const std::string& key, std::vector<std::string> args,
                 command_client::completion done);

    bool connected() const;
    bool is_live(const std::string& channel) const;
    std::size_t channel_count() const;
    std::uint64_t reconnects() const;
    std::uint64_t protocol_errors() const;
    std::uint64_t tls_failures() const;
    /// Slot maps read and accepted.
    std::uint64_t map_refreshes() const;
    /// Channels moved to another shard after a refusal or an unrequested sunsubscribe, and
    /// commands redirected by MOVED/ASK.
    std::uint64_t moves() const;
    std::uint64_t redirects() const;
    std::vector<cluster_link_stats> links() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace ssegw
