#include "ssegw/broker/control_store.hpp"

#include <algorithm>
#include <ctime>

#include <spdlog/spdlog.h>

namespace ssegw {

namespace {

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

std::string error_of(const std::optional<reply>& r, const std::string& error) {
    return !error.empty() ? error : r ? r->str : "no reply";
}

} // namespace

void send_control_message(const redis_executor& run, const control_names& names,
                          std::string message, std::int64_t keep_until, broker::publish_done done) {
    auto failed = done;
    auto publish = [run, names, message, done = std::move(done)]() mutable {
        run({names.publish_command, names.channel, std::move(message)},
            [done = std::move(done)](std::optional<reply> r, std::string error) {
                if (!error.empty() || !r || r->type == reply::kind::error)
                    return done(false, error_of(r, error));
                done(true, std::to_string(r->integer));
            });
    };
    if (keep_until <= 0) return publish();
    // Stored before it is published, on the same connection (in order): an instance that
    // reconnects between the two reads it back; one that is subscribed gets it live.
    const auto& key = names.revocations_key;
    const auto now = unix_now();
    run({"ZREMRANGEBYSCORE", key, "-inf", std::to_string(now)},
        [](std::optional<reply>, std::string) {});
    run({"ZADD", key, std::to_string(keep_until), message},
        [publish = std::move(publish), failed = std::move(failed)](std::optional<reply> r,
                                                                   std::string error) mutable {
            if (!error.empty() || !r || r->type == reply::kind::error)
                return failed(false, "could not store the revocation: " + error_of(r, error));
            publish();
        });
    // The set goes away with its last record (every record ends by keep_until: they share
    // auth.revocation_ttl_seconds, so a later one never ends sooner).
    run({"EXPIRE", key, std::to_string(std::max<std::int64_t>(1, keep_until - now))},
        [](std::optional<reply>, std::string) {});
}

void read_stored_control(const redis_executor& run, const control_names& names,
                         std::function<void(stored_control)> done) {
    std::string after_now = "("; // exclusive: records ending now are over
    after_now += std::to_string(unix_now());
    run({"ZRANGEBYSCORE", names.revocations_key, std::move(after_now), "+inf"},
        [done = std::move(done)](std::optional<reply> r, std::string error) {
            stored_control out;
            const bool refused = r && r->type != reply::kind::array &&
                                 (r->type != reply::kind::error || r->str.starts_with("NOPERM") ||
                                  r->str.starts_with("WRONGTYPE") || r->str.starts_with("ERR"));
            if (refused) {
                out.result = stored_control::outcome::refused;
                out.why = r->str.empty() ? "unexpected reply" : r->str;
            } else if (!error.empty() || !r || r->type != reply::kind::array) {
                out.result = stored_control::outcome::retry;
                out.why = error_of(r, error);
            } else {
                out.result = stored_control::outcome::read;
                for (const auto& m : r->elements)
                    if (m.type == reply::kind::string) out.messages.push_back(m.str);
            }
            done(std::move(out));
        });
}

control_replayer::control_replayer(boost::asio::io_context& io, redis_executor run,
                                   control_names names, std::chrono::milliseconds retry_after,
                                   deliver_fn deliver)
    : run_(std::move(run)), names_(std::move(names)), retry_after_(retry_after),
      deliver_(std::move(deliver)), timer_(io) {}

void control_replayer::on_link(bool up) {
    link_up_ = up;
    if (up) return read();
    replayed_ = false; // messages sent meanwhile are missed: read them back
}

void control_replayer::stop() {
    *alive_ = false;
    link_up_ = false;
    timer_.cancel();
}

void control_replayer::read() {
    read_stored_control(run_, names_, [this, alive = alive_](stored_control stored) {
        if (!*alive || !link_up_) return; // the next link-up reads them again
        switch (stored.result) {
        case stored_control::outcome::refused:
            // Retrying cannot help, and holding the instance unready over it would turn an
            // upgrade into an outage.
            spdlog::error("cannot read the stored revocations ({}): tokens revoked before this "
                          "instance connected are not refused here; see the README's Redis ACL",
                          stored.why);
            replayed_ = true;
            return;
        case stored_control::outcome::retry:
            // The command link may come up after the subscriber's, Redis may be loading: try
            // again shortly.
            spdlog::log(stored.why == "redis unavailable" ? spdlog::level::debug
                                                          : spdlog::level::warn,
                        "could not read the stored revocations: {}; retrying", stored.why);
            timer_.expires_after(retry_after_);
            timer_.async_wait([this, alive](const boost::system::error_code& ec) {
                if (!ec && *alive && link_up_) read();
            });
            return;
        case stored_control::outcome::read:
            for (const auto& m : stored.messages) deliver_(m);
            replayed_ = true;
            return;
        }
    });
}

} // namespace ssegw
