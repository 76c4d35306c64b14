#include "ssegw/broker/redis_broker.hpp"

#include <algorithm>
#include <ctime>
#include <utility>

#include <boost/asio/post.hpp>
#include <boost/container/small_vector.hpp>
#include <spdlog/spdlog.h>

#include "ssegw/broker/control_store.hpp"
#include "ssegw/broker/event_sink.hpp"
#include "ssegw/config/config_loader.hpp"
#include "ssegw/core/channel.hpp"
#include "ssegw/core/control_message.hpp"
#include "ssegw/core/redis_url.hpp"
#include "ssegw/core/text.hpp"
#include "ssegw/redis/command_client.hpp"
#include "ssegw/redis/history_functions.hpp"
#include "ssegw/redis/sentinel_monitor.hpp"
#include "ssegw/redis/subscriber.hpp"

namespace ssegw {

redis_broker::redis_broker(boost::asio::io_context& ioc, const gateway_config& cfg)
    : cfg_(cfg), load_timer_(ioc),
      library_source_(
          history_library_source(cfg.redis.prefix, cfg.history.max_len, cfg.history.ttl_seconds)) {
    const auto endpoint = redis_endpoint_of(cfg.redis);
    const bool sentinel = cfg.redis.deployment == redis_deployment::sentinel;
    if (!sentinel) address_ = address_of(endpoint);
    subscriber_options opts;
    opts.reconnect_min = std::chrono::milliseconds(cfg.redis.reconnect_min_ms);
    opts.reconnect_max = std::chrono::milliseconds(cfg.redis.reconnect_max_ms);
    opts.require_primary = sentinel;
    subscriber_handlers handlers;
    handlers.on_message = [this](std::string_view ch, std::string_view payload) {
        on_message(ch, payload);
    };
    handlers.on_state = [this](bool up) {
        // The primary went away: ask where it is now rather than at the next poll.
        if (!up && sentinels_) sentinels_->refresh();
        on_state(up);
    };
    handlers.on_subscribed = [this](std::string_view ch) { on_subscribed(ch); };
    handlers.on_burst_end = [this] { sink_->flush(); };
    subscriber_ = std::make_unique<subscriber>(ioc, endpoint, opts, std::move(handlers));
    command_client_options command_opts;
    command_opts.reconnect_min = opts.reconnect_min;
    command_opts.reconnect_max = opts.reconnect_max;
    command_opts.require_primary = sentinel;
    commands_ = std::make_unique<command_client>(ioc, endpoint, command_opts);
    control_ = std::make_unique<control_replayer>(
        ioc,
        [this](std::vector<std::string> args, command_client::completion done) {
            commands_->execute(std::move(args), std::move(done));
        },
        control_names_of(cfg.redis.prefix), opts.reconnect_min,
        [this](std::string_view message) { control_received(message, true); });
    if (!sentinel) return;
    sentinel_monitor_options watch;
    watch.sentinels = redis_sentinels_of(cfg.redis);
    watch.master_name = cfg.redis.sentinel.master_name;
    watch.reconnect_min = opts.reconnect_min;
    watch.reconnect_max = opts.reconnect_max;
    sentinels_ = std::make_unique<sentinel_monitor>(
        ioc, std::move(watch), [this, endpoint](const std::string& host, std::uint16_t port) {
            auto primary = endpoint;
            primary.host = host;
            primary.port = port;
            address_ = address_of(primary);
            subscriber_->retarget(primary, true);
            commands_->retarget(primary, true);
        });
}

redis_broker::~redis_broker() = default;

void redis_broker::start(event_sink& sink) {
    sink_ = &sink;
    if (cfg_.redis.mode == subscribe_mode::pattern)
        subscriber_->psubscribe(cfg_.redis.prefix + "*");
    else
        subscriber_->subscribe(cfg_.redis.prefix + std::string(control_channel));
    subscriber_->start();
    commands_->start();
    if (sentinels_) sentinels_->start();
    if (cfg_.history.enabled) keep_loading_library();
}

void redis_broker::stop() {
    stopped_ = true;
    load_timer_.cancel();
    if (sentinels_) sentinels_->stop();
    control_->stop();
    subscriber_->stop();
    commands_->stop();
}

void redis_broker::want(const std::string& channel, bool wanted) {
    if (cfg_.redis.mode == subscribe_mode::pattern) return; // one PSUBSCRIBE covers everything
    if (wanted) {
        subscriber_->subscribe(cfg_.redis.prefix + channel);
        return;
    }
    subscriber_->unsubscribe(cfg_.redis.prefix + channel);
    recheck(channel, true); // whoever waited on it has left; let them go
}

void redis_broker::publish(std::string channel, std::string payload, bool with_history,
                           publish_done done) {
    auto finish = [done = std::move(done)](std::optional<reply> r, std::string error) {
        if (!done) return;
        if (!error.empty()) return done(false, error);
        if (r->type == reply::kind::integer) return done(true, std::to_string(r->integer));
        done(true, r->str);
    };
    if (with_history)
        return call_function(publish_command(cfg_.redis.prefix, channel, std::move(payload)),
                             std::move(finish));
    commands_->execute({"PUBLISH", cfg_.redis.prefix + channel, std::move(payload)},
                       std::move(finish));
}

void redis_broker::epoch_changed(const stream_position& routed, const std::string& new_epoch) {
    ++epoch_changes_;
    spdlog::warn("history moved to epoch {} (this instance had routed epoch {} up to {}): Redis "
                 "failed over, restarted or reloaded its functions; recording what may be lost",
                 new_epoch, routed.epoch, routed.seq);
    // Not ordered with resumes: one answered in the milliseconds before this lands replays what
    // exists without the notice (docs/redis-failover.md).
    call_function(
        note_epoch_command(routed, new_epoch), [](std::optional<reply> r, std::string error) {
            if (!error.empty() || !r || r->type == reply::kind::error)
                spdlog::warn("could not record the epoch change: {}", !error.empty() ? error
                                                                      : r            ? r->str
                                                                                     : "no reply");
        });
}

control_names redis_broker::control_names_of(const std::string& prefix) {
    return {"PUBLISH", prefix + std::string(control_channel), prefix + "revocations"};
}

void redis_broker::send_control(std::string message, std::int64_t keep_until, publish_done done) {
    send_control_message(
        [this](std::vector<std::string> args, command_client::completion done) {
            commands_->execute(std::move(args), std::move(done));
        },
        control_names_of(cfg_.redis.prefix), std::move(message), keep_until, std::move(done));
}

void redis_broker::read_history(std::vector<std::string> channels,
                                std::optional<stream_position> from, history_done done) {
    if (!from) return read_tip(std::move(channels), std::move(done));
    call_history(std::move(channels), std::move(from), std::move(done));
}

void redis_broker::read_tip(std::vector<std::string> channels, history_done done) {
    // A new stream needs only where history stands, and any MGET sent after its subscription
    // was confirmed tells it: the streams asking within one loop turn (one burst of SUBSCRIBE
    // confirmations, in a reconnect storm dozens) share one, sent at the end of the turn.
    tip_waiters_.push_back({std::move(channels), std::move(done)});
    if (tip_waiters_.size() == 1)
        boost::asio::post(load_timer_.get_executor(), [this] { send_tip_read(); });
}

void redis_broker::send_tip_read() {
    // One MGET instead of a function call (every connect pays for this; the figures are in
    // docs/benchmarks.md). The time is this host's clock: it only has to say when the position
    // was handed out.
    commands_->execute(
        {"MGET", cfg_.redis.prefix + "epoch", cfg_.redis.prefix + "seq"},
        [this, waiters = std::exchange(tip_waiters_, {})](std::optional<reply> r,
                                                          std::string error) mutable {
            history_read tip;
            if (!r || !error.empty() || r->type != reply::kind::array || r->elements.size() != 2) {
                tip.error = error.empty() ? "unexpected MGET reply" : error;
            } else if (r->elements[0].type != reply::kind::string) {
                // Nothing was ever published with history: the function creates the epoch.
                for (auto& w : waiters)
                    call_history(std::move(w.channels), std::nullopt, std::move(w.done));
                return;
            } else {
                tip.tip.epoch = r->elements[0].str;
                tip.tip.time = static_cast<std::int64_t>(std::time(nullptr));
                tip.ok = true;
                if (const auto& seq = r->elements[1]; seq.type == reply::kind::string) {
                    if (!parse_whole_number(seq.str, tip.tip.seq)) {
                        tip.ok = false;
                        tip.error = "unexpected sequence value";
                    }
                }
            }
            for (auto& w : waiters) w.done(tip);
        });
}

void redis_broker::call_history(std::vector<std::string> channels,
                                std::optional<stream_position> from, history_done done) {
    auto cmd = history_command(cfg_.redis.prefix, channels, from);
    call_function(std::move(cmd), [channels = std::move(channels), done = std::move(done)](
                                      std::optional<reply> r, std::string error) {
        if (!r) {
            history_read failed;
            failed.error = error;
            return done(std::move(failed));
        }
        done(parse_history_reply(*r, channels));
    });
}

void redis_broker::call_function(std::vector<std::string> cmd, command_done done, bool may_reload) {
    auto retry_cmd = cmd;
    commands_->execute(
        std::move(cmd), [this, retry_cmd = std::move(retry_cmd), done = std::move(done),
                         may_reload](std::optional<reply> r, std::string error) mutable {
            if (r && may_reload && is_missing_function_error(*r)) {
                // Redis restarted without its data (functions included): install and retry once.
                library_loaded_ = false;
                return load_library([this, retry_cmd = std::move(retry_cmd),
                                     done = std::move(done)](bool ok) mutable {
                    if (!ok) return done(std::nullopt, "could not install the history functions");
                    call_function(std::move(retry_cmd), std::move(done), false);
                });
            }
            done(std::move(r), std::move(error));
        });
}

void redis_broker::load_library(std::function<void(bool ok)> done) {
    // Installed already (by this instance before a reconnect, by another instance, or replicated
    // to a promoted primary): loading it again would reset the functions' per-process state and
    // open a new history epoch for nothing, on every gateway start.
    commands_->execute(
        {"FUNCTION", "LIST", "LIBRARYNAME", std::string(history_library_name), "WITHCODE"},
        [this, done = std::move(done)](std::optional<reply> r, std::string error) mutable {
            if (error.empty() && r && installed_code_matches(*r, library_source_)) {
                if (!library_loaded_) spdlog::info("history functions already installed");
                library_loaded_ = true;
                if (done) done(true);
                return;
            }
            replace_library(std::move(done));
        });
}

void redis_broker::replace_library(std::function<void(bool ok)> done) {
    commands_->execute({"FUNCTION", "LOAD", "REPLACE", library_source_},
                       [this, done = std::move(done)](std::optional<reply> r, std::string error) {
                           const bool ok = error.empty() && r && r->type == reply::kind::string;
                           if (ok && !library_loaded_) spdlog::info("history functions installed");
                           if (!ok && r) spdlog::error("installing history functions: {}", r->str);
                           library_loaded_ = ok;
                           if (done) done(ok);
                       });
}

void redis_broker::keep_loading_library() {
    if (stopped_ || library_loaded_) return;
    load_library([this](bool ok) {
        if (ok || stopped_) return;
        load_timer_.expires_after(std::chrono::milliseconds(cfg_.redis.reconnect_min_ms + 200));
        load_timer_.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) keep_loading_library();
        });
    });
}

bool redis_broker::is_live(const std::string& channel) const {
    if (cfg_.redis.mode == subscribe_mode::pattern) return link_up_;
    return subscriber_->is_live(cfg_.redis.prefix + channel);
}

void redis_broker::when_subscribed(const std::vector<std::string>& channels,
                                   std::function<void()> ready) {
    // Pointers, not copies, and inline: this runs for every new stream (no allocation when
    // everything is live, one fewer per channel when not).
    boost::container::small_vector<const std::string*, 4> missing;
    for (const auto& ch : channels)
        if (!is_live(ch)) missing.push_back(&ch);
    if (missing.empty()) return ready();
    const auto id = next_waiter_++;
    if (cfg_.redis.mode != subscribe_mode::pattern)
        for (const auto* ch : missing) waiting_on_.emplace(*ch, id);
    waiters_.emplace(id, waiter{channels, std::move(ready)});
}

void redis_broker::recheck(const std::string& channel, bool release_anyway) {
    if (waiting_on_.empty()) return;
    auto [first, last] = waiting_on_.equal_range(channel);
    // Inline for the usual one or two waiters per confirmed channel: runs for every SUBSCRIBE
    // confirmation, i.e. for every new user's stream.
    boost::container::small_vector<std::uint64_t, 4> ids;
    for (auto it = first; it != last; ++it) ids.push_back(it->second);
    waiting_on_.erase(first, last);
    boost::container::small_vector<std::function<void()>, 2> go;
    for (auto id : ids) {
        auto w = waiters_.find(id);
        if (w == waiters_.end()) continue;
        // All channels are checked again, not counted down: a reconnect in between may have
        // dropped ones that were live when the waiter was registered.
        if (!release_anyway) {
            const auto& chs = w->second.channels;
            auto not_live = std::find_if(chs.begin(), chs.end(),
                                         [this](const std::string& ch) { return !is_live(ch); });
            if (not_live != chs.end()) {
                waiting_on_.emplace(*not_live, id);
                continue;
            }
        }
        go.push_back(std::move(w->second.ready));
        waiters_.erase(w);
    }
    for (auto& f : go) f(); // after the bookkeeping: callbacks may call back into us
}

void redis_broker::release_all_waiters() {
    std::vector<std::function<void()>> go;
    go.reserve(waiters_.size());
    for (auto& [id, w] : waiters_) go.push_back(std::move(w.ready));
    waiters_.clear();
    waiting_on_.clear();
    for (auto& f : go) f();
}

void redis_broker::on_subscribed(std::string_view redis_channel) {
    auto name = strip_prefix(redis_channel, cfg_.redis.prefix);
    if (name) recheck(std::string(*name));
}

void redis_broker::on_state(bool up) {
    link_up_ = up;
    if (up) {
        spdlog::info("redis subscriber connected");
        control_->on_link(true);
        // Per-channel waiters are released by each SUBSCRIBE confirmation (on_subscribed); the
        // one PSUBSCRIBE of pattern mode is confirmed now.
        if (cfg_.redis.mode == subscribe_mode::pattern) release_all_waiters();
    } else {
        control_->on_link(false);
        spdlog::warn("redis subscriber disconnected; reconnecting with backoff");
    }
    link_changed(up);
}

bool redis_broker::ready() const {
    return subscriber_->connected() && (!cfg_.history.enabled || library_loaded_) &&
           control_->replayed();
}

broker_stats redis_broker::stats() const {
    broker_stats s;
    s.connected = subscriber_->connected();
    s.reconnects = subscriber_->reconnects();
    s.subscribed_channels = subscriber_->channel_count();
    s.protocol_errors = subscriber_->protocol_errors();
    s.tls_failures = subscriber_->tls_failures() + commands_->tls_failures();
    s.epoch_changes = epoch_changes_;
    s.address = address_;
    if (sentinels_) {
        s.failovers = sentinels_->failovers();
        s.sentinel = sentinels_->sentinel_address();
        s.sentinel_changes = sentinels_->sentinel_changes();
    }
    return s;
}

void redis_broker::on_message(std::string_view redis_channel, std::string_view payload) {
    // A pattern can match channels we do not understand (sse:junk): the router counts those as
    // bad_channel drops.
    if (redis_channel.size() == cfg_.redis.prefix.size() + control_channel.size() &&
        redis_channel.starts_with(cfg_.redis.prefix) && redis_channel.ends_with(control_channel))
        return control_received(payload, false);
    auto name = strip_prefix(redis_channel, cfg_.redis.prefix);
    sink_->route(name ? *name : std::string_view("?"), payload);
}

} // namespace ssegw

namespace ssegw {

void redis_broker::run_command(const std::string&, std::vector<std::string> args,
                               command_done done) {
    // One server (or the primary Sentinel names): every key lives there.
    commands_->execute(std::move(args), std::move(done));
}

} // namespace ssegw
