// The Redis side of control messages (POST /disconnect), kept apart from redis_broker.cpp's
// pub/sub and history: messages go out on <prefix>control, which every instance subscribes to;
// revocations are also kept in the sorted set <prefix>revocations (member: the message, score:
// its end), read back by an instance whose feed was down or that starts later.

#include <algorithm>
#include <ctime>

#include <spdlog/spdlog.h>

#include "ssegw/broker/redis_broker.hpp"
#include "ssegw/core/control_message.hpp"
#include "ssegw/redis/command_client.hpp"
#include "ssegw/redis/resp.hpp"

namespace ssegw {

namespace {

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

} // namespace

void redis_broker::send_control(std::string message, std::int64_t keep_until, publish_done done) {
    const auto channel = cfg_.redis.prefix + std::string(control_channel);
    auto failed = done;
    auto publish = [this, channel, message, done = std::move(done)]() mutable {
        commands_->execute(
            {"PUBLISH", channel, std::move(message)},
            [done = std::move(done)](std::optional<reply> r, std::string error) {
                if (!error.empty() || !r || r->type == reply::kind::error)
                    return done(false, !error.empty() ? error : r ? r->str : "no reply");
                done(true, std::to_string(r->integer));
            });
    };
    if (keep_until <= 0) return publish();
    // Stored before it is published, on the same connection (in order): an instance that
    // reconnects between the two reads it back; one that is subscribed gets it live.
    const auto key = cfg_.redis.prefix + "revocations";
    const auto now = unix_now();
    commands_->execute({"ZREMRANGEBYSCORE", key, "-inf", std::to_string(now)},
                       [](std::optional<reply>, std::string) {});
    commands_->execute({"ZADD", key, std::to_string(keep_until), message},
                       [publish = std::move(publish), failed = std::move(failed)](
                           std::optional<reply> r, std::string error) mutable {
                           if (!error.empty() || !r || r->type == reply::kind::error) {
                               const auto why = !error.empty() ? error : r ? r->str : "no reply";
                               return failed(false, "could not store the revocation: " + why);
                           }
                           publish();
                       });
    // The set goes away with its last record (every record ends by keep_until: they share
    // auth.revocation_ttl_seconds, so a later one never ends sooner).
    commands_->execute({"EXPIRE", key, std::to_string(std::max<std::int64_t>(1, keep_until - now))},
                       [](std::optional<reply>, std::string) {});
}

void redis_broker::replay_control() {
    commands_->execute(
        {"ZRANGEBYSCORE", cfg_.redis.prefix + "revocations", "(" + std::to_string(unix_now()),
         "+inf"},
        [this](std::optional<reply> r, std::string error) {
            if (stopped_ || !link_up_) return; // the next link-up reads them again
            const bool refused = r && r->type != reply::kind::array &&
                                 (r->type != reply::kind::error || r->str.starts_with("NOPERM") ||
                                  r->str.starts_with("WRONGTYPE") || r->str.starts_with("ERR"));
            if (refused) {
                // Redis refused (an ACL without +zrangebyscore, say): retrying cannot help, and
                // holding the instance unready over it would turn an upgrade into an outage.
                spdlog::error("cannot read the stored revocations ({}): tokens revoked before "
                              "this instance connected are not refused here; see the README's "
                              "Redis ACL",
                              r->str.empty() ? "unexpected reply" : r->str);
                control_replayed_ = true;
                return;
            }
            if (!error.empty() || !r || r->type != reply::kind::array) {
                // The command link may come up after the subscriber's, Redis may be loading:
                // try again shortly. Not
                // ready meanwhile, so no balancer sends streams a revoked token could open.
                spdlog::log(error == "redis unavailable" ? spdlog::level::debug
                                                         : spdlog::level::warn,
                            "could not read the stored revocations: {}; retrying",
                            !error.empty() ? error
                            : r            ? r->str
                                           : "no reply");
                control_timer_.expires_after(
                    std::chrono::milliseconds(cfg_.redis.reconnect_min_ms));
                control_timer_.async_wait([this](const boost::system::error_code& ec) {
                    if (!ec && link_up_ && !stopped_) replay_control();
                });
                return;
            }
            for (const auto& m : r->elements)
                if (m.type == reply::kind::string) control_received(m.str, true);
            control_replayed_ = true;
        });
}

} // namespace ssegw
