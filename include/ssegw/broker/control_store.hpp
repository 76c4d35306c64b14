#pragma once
// The Redis side of control messages (POST /disconnect), shared by the single-server and the
// cluster brokers: a message goes out on the control channel, which every instance subscribes
// to; a revocation is first kept in the sorted set <prefix>revocations (member: the message,
// score: its end), read back by an instance whose feed was down or that starts later. Each
// command names its key (or channel) first, so a cluster routes it by slot.

#include "ssegw/broker/broker.hpp"
#include "ssegw/redis/command_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

/// Runs one command (its key or channel is args[1]) on the right Redis link.
using redis_executor =
    std::function<void(std::vector<std::string> args, command_client::completion done)>;

struct control_names {
    std::string publish_command; ///< PUBLISH, or SPUBLISH in a cluster
    std::string channel;         ///< <prefix>control, or <prefix>{control} in a cluster
    std::string revocations_key; ///< <prefix>revocations
};

/// Stores the message until keep_until (unix seconds) when that is > 0, then publishes it.
void send_control_message(const redis_executor& run, const control_names& names,
                          std::string message, std::int64_t keep_until, broker::publish_done done);

/// What reading the stored revocations gave.
struct stored_control {
    enum class outcome {
        read,    ///< `messages` holds every revocation still in force
        refused, ///< Redis refused the read (an ACL without +zrangebyscore): retrying cannot help
        retry,   ///< the link is not up yet, or Redis is loading: try again shortly
    } result = outcome::retry;
    std::vector<std::string> messages;
    std::string why; ///< for refused and retry
};

void read_stored_control(const redis_executor& run, const control_names& names,
                         std::function<void(stored_control)> done);

/// Applies the stored revocations whenever the feed comes up (it may have missed messages while
/// down, or the instance just started) and says when that is done: the instance is not ready
/// before, so no balancer sends it streams that a revoked token could open.
class control_replayer {
public:
    using deliver_fn = std::function<void(std::string_view message)>;
    control_replayer(boost::asio::io_context& io, redis_executor run, control_names names,
                     std::chrono::milliseconds retry_after, deliver_fn deliver);
    /// The live feed came up (read them again) or went down (no longer replayed).
    void on_link(bool up);
    void stop();
    bool replayed() const { return replayed_; }

private:
    void read();

    redis_executor run_;
    control_names names_;
    std::chrono::milliseconds retry_after_;
    deliver_fn deliver_;
    boost::asio::steady_timer timer_;
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    bool link_up_ = false;
    bool replayed_ = false;
};

} // namespace ssegw
