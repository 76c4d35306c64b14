#pragma once
// Redis Cluster mode (redis.mode "cluster"): each wanted channel is SSUBSCRIBEd on the shard that
// owns `<prefix>{<channel>}`, and a publish is an SPUBLISH routed by that slot. With history, a
// publish is `FCALL sse_publish 1 <prefix>{<channel>}` (redis/cluster_history_functions.hpp: a
// stream per channel in the channel's slot, positions per channel), a resume reads each channel
// on its own shard after the client's composite cursor (core/cluster_cursor.hpp), and every
// (re)confirmed subscription catches the channel up from what was routed, so a channel that moved
// (migration, failover, link death) loses nothing acknowledged.

#include "ssegw/broker/broker.hpp"
#include "ssegw/config/config.hpp"
#include "ssegw/redis/command_client.hpp"

#include <memory>
#include <string_view>

#include <boost/asio/io_context.hpp>

namespace ssegw {

class cluster_subscriber;
class control_replayer;
struct control_names;

class cluster_broker final : public broker {
public:
    /// Throws std::invalid_argument when redis.url does not parse.
    cluster_broker(boost::asio::io_context& ioc, const gateway_config& cfg);
    ~cluster_broker() override;

    void start(event_sink& sink) override;
    void stop() override;
    void want(const std::string& channel, bool wanted) override;
    void publish(std::string channel, std::string payload, bool with_history,
                 publish_done done) override;
    void read_history(std::vector<std::string> channels, std::optional<stream_position> from,
                      history_done done) override;
    void when_subscribed(const std::vector<std::string>& channels,
                         std::function<void()> ready) override;
    bool ready() const override;
    broker_stats stats() const override;
    void send_control(std::string message, std::int64_t keep_until, publish_done done) override;
    bool runs_commands() const override { return true; }
    void run_command(const std::string& key, std::vector<std::string> args,
                     command_done done) override;

private:
    /// `sse:{user:42}`: the sharded channel of an internal channel name (its slot is the slot of
    /// `user:42`, the same as the channel's history key will have).
    std::string redis_channel(std::string_view channel) const;

    boost::asio::io_context& ioc_;
    const gateway_config& cfg_;
    std::shared_ptr<int> life_ = std::make_shared<int>(0); ///< expires at stop()
    event_sink* sink_ = nullptr;                           ///< set by start()
    std::string epoch_; ///< of the positions handed out (none are ever resumed here)
    std::unique_ptr<cluster_subscriber> cluster_;
    std::unique_ptr<control_replayer> control_; ///< stored revocations, applied at link-up
    control_names control_names_() const;

    /// A history function call on the shard owning `key`, installing the library there first
    /// if that node lacks it (a new primary, a restarted node), then trying once more.
    void call_function(const std::string& key, std::vector<std::string> cmd, command_done done,
                       bool may_load = true);
    /// A subscription was confirmed: release stream waiters, catch the channel up.
    void on_subscribed(std::string_view redis_channel);
    void recheck_waiters(const std::string* released = nullptr);
    void catch_up(std::string channel);
    void read_catch_up(std::string channel, std::optional<channel_position> from, unsigned attempt);
    /// A catch-up read is tried this often (100 ms apart, growing to 1 s) before the held
    /// events are let go: about 25 s, longer than a cluster takes to promote a replica.
    static constexpr unsigned max_catch_up_attempts = 30;

    struct waiter {
        std::vector<std::string> channels;
        std::function<void()> ready;
    };
    std::string library_source_;
    std::vector<waiter> waiters_;
    std::uint64_t epoch_changes_ = 0; ///< catch-ups that found events gone (failover)
    /// Runs a command on the shard owning its key (args[1]).
    void execute(std::vector<std::string> args, command_client::completion done);
};

} // namespace ssegw
