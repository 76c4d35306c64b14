#pragma once
// Redis Cluster mode (redis.mode "cluster"), live delivery: each wanted channel is SSUBSCRIBEd on
// the shard that owns `<prefix>{<channel>}`, and a publish is an SPUBLISH routed by that slot.
// History in a cluster (per-channel streams and the composite cursor of docs/architecture.md) is
// not in this version: config validation requires history.enabled false with this mode.

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

    const gateway_config& cfg_;
    event_sink* sink_ = nullptr; ///< set by start()
    std::string epoch_;          ///< of the positions handed out (none are ever resumed here)
    std::unique_ptr<cluster_subscriber> cluster_;
    std::unique_ptr<control_replayer> control_; ///< stored revocations, applied at link-up
    control_names control_names_() const;
    /// Runs a command on the shard owning its key (args[1]).
    void execute(std::vector<std::string> args, command_client::completion done);
};

} // namespace ssegw
