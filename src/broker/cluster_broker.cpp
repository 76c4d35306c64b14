#include "ssegw/broker/cluster_broker.hpp"

#include "ssegw/broker/control_store.hpp"
#include "ssegw/broker/event_sink.hpp"
#include "ssegw/broker/memory_history.hpp"
#include "ssegw/config/config_loader.hpp"
#include "ssegw/core/channel.hpp"
#include "ssegw/core/control_message.hpp"
#include "ssegw/redis/cluster_history_functions.hpp"
#include "ssegw/redis/cluster_subscriber.hpp"
#include "ssegw/redis/history_functions.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <ctime>
#include <unordered_map>

namespace ssegw {

namespace {

/// `sse:{user:42}` -> `user:42` when it has the prefix, the braces and a valid name inside.
std::optional<std::string_view> channel_of(std::string_view redis_channel,
                                           std::string_view prefix) {
    if (!redis_channel.starts_with(prefix)) return std::nullopt;
    auto rest = redis_channel.substr(prefix.size());
    if (rest.size() < 3 || rest.front() != '{' || rest.back() != '}') return std::nullopt;
    rest = rest.substr(1, rest.size() - 2);
    if (!kind_of(rest)) return std::nullopt;
    return rest;
}

} // namespace

cluster_broker::cluster_broker(boost::asio::io_context& ioc, const gateway_config& cfg)
    : ioc_(ioc), cfg_(cfg), epoch_(random_epoch()),
      library_source_(cluster_history_library_source(cfg.redis.prefix, cfg.history.max_len,
                                                     cfg.history.ttl_seconds)) {
    cluster_subscriber_options opts;
    opts.reconnect_min = std::chrono::milliseconds(cfg.redis.reconnect_min_ms);
    opts.reconnect_max = std::chrono::milliseconds(cfg.redis.reconnect_max_ms);
    subscriber_handlers handlers;
    handlers.on_message = [this](std::string_view ch, std::string_view payload) {
        if (ch == control_names_().channel) return control_received(payload, false);
        // A channel we cannot name (another prefix's, junk) is counted as a bad_channel drop.
        const auto name = channel_of(ch, cfg_.redis.prefix);
        if (name && cfg_.history.enabled)
            if (const auto env = parse_cluster_envelope(payload))
                return sink_->route_channel_history(*name, env->at, env->payload);
        sink_->route(name ? *name : std::string_view("?"), payload);
    };
    handlers.on_state = [this](bool up) {
        control_->on_link(up);
        link_changed(up);
        if (up) recheck_waiters();
    };
    handlers.on_subscribed = [this](std::string_view ch) { on_subscribed(ch); };
    handlers.on_burst_end = [this] { sink_->flush(); };
    cluster_ = std::make_unique<cluster_subscriber>(ioc, redis_seeds_of(cfg.redis), opts,
                                                    std::move(handlers));
    control_ = std::make_unique<control_replayer>(
        ioc,
        [this](std::vector<std::string> args, command_client::completion done) {
            execute(std::move(args), std::move(done));
        },
        control_names_(), opts.reconnect_min,
        [this](std::string_view message) { control_received(message, true); });
}

control_names cluster_broker::control_names_() const {
    // The channel in braces, like every channel here: SPUBLISH routes it by the slot of
    // "control". The revocations are one key, wherever its slot lives.
    return {"SPUBLISH", redis_channel(control_channel), cfg_.redis.prefix + "revocations"};
}

void cluster_broker::execute(std::vector<std::string> args, command_client::completion done) {
    const auto key = args.at(1);
    cluster_->execute(key, std::move(args), std::move(done));
}

void cluster_broker::send_control(std::string message, std::int64_t keep_until, publish_done done) {
    send_control_message(
        [this](std::vector<std::string> args, command_client::completion done) {
            execute(std::move(args), std::move(done));
        },
        control_names_(), std::move(message), keep_until, std::move(done));
}

cluster_broker::~cluster_broker() = default;

std::string cluster_broker::redis_channel(std::string_view channel) const {
    std::string out = cfg_.redis.prefix;
    out += '{';
    out += channel;
    out += '}';
    return out;
}

void cluster_broker::start(event_sink& sink) {
    sink_ = &sink;
    cluster_->subscribe(control_names_().channel);
    cluster_->start();
}

void cluster_broker::stop() {
    life_.reset(); // pending catch-up retries end here
    control_->stop();
    cluster_->stop();
}

void cluster_broker::want(const std::string& channel, bool wanted) {
    if (wanted) return cluster_->subscribe(redis_channel(channel));
    cluster_->unsubscribe(redis_channel(channel));
    recheck_waiters(&channel); // whoever waited on it has left; let them go
}

void cluster_broker::publish(std::string channel, std::string payload, bool with_history,
                             publish_done done) {
    auto key = redis_channel(channel);
    if (with_history) {
        if (!cfg_.history.enabled) {
            if (done) done(false, "history is disabled (history.enabled is false)");
            return;
        }
        auto cmd = cluster_publish_command(cfg_.redis.prefix, channel, std::move(payload));
        return call_function(
            key, std::move(cmd),
            [channel = std::move(channel), done = std::move(done)](std::optional<reply> r,
                                                                  std::string error) {
                if (!done) return;
                if (!error.empty()) return done(false, error);
                if (r->type == reply::kind::error) return done(false, r->str);
                // Single mode answers the event's id, the same for every receiver. Here each
                // stream's id is its own cursor; what they share is this channel's component,
                // which every receiver's id carries once it has the event. Answered as a
                // one-component cursor: as a Last-Event-ID it resumes the channel right after
                // the event (and a stream's other channels from their tips).
                const auto at = parse_cluster_publish_reply(*r);
                if (!at) return done(true, r->str); // published; no position to tell
                cluster_cursor one;
                one.components.push_back({cursor_hash(channel), *at});
                done(true, one.format());
            });
    }
    cluster_->execute(key, {"SPUBLISH", key, std::move(payload)},
                      [done = std::move(done)](std::optional<reply> r, std::string error) {
                          if (!done) return;
                          if (!error.empty()) return done(false, error);
                          done(true, std::to_string(r->integer));
                      });
}

void cluster_broker::read_history(std::vector<std::string> channels,
                                  std::optional<stream_position> from, history_done done) {
    // `from` carries a client's composite cursor as text (http/handshake.cpp); any other
    // position is the process-wide one resume_service catches up from after a link-up, which
    // has no meaning here: channels catch up one by one (catch_up()).
    std::optional<cluster_cursor> cursor;
    if (from) cursor = cluster_cursor::parse(from->epoch);
    if (channels.empty() || !cfg_.history.enabled || (from && !cursor)) {
        history_read none;
        none.ok = true;
        none.tip = {epoch_, 0, static_cast<std::int64_t>(std::time(nullptr))};
        return done(std::move(none));
    }
    struct state {
        std::vector<std::string> channels;
        std::vector<std::optional<channel_position>> from;
        std::vector<bool> collides;
        std::vector<channel_history> parts;
        std::size_t pending = 0;
        bool had_cursor = false;
        history_done done;
    };
    auto st = std::make_shared<state>();
    st->had_cursor = cursor.has_value();
    st->from.resize(channels.size());
    st->collides.resize(channels.size());
    st->parts.resize(channels.size());
    std::unordered_map<std::uint32_t, std::size_t> seen;
    for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto h = cursor_hash(channels[i]);
        auto [it, fresh] = seen.emplace(h, i);
        // Two channels of one stream with one hash: the cursor cannot say whose component it
        // is, so neither is resumed from it (both start at their tips, reported as truncated).
        if (!fresh) st->collides[i] = st->collides[it->second] = true;
    }
    for (std::size_t i = 0; i < channels.size(); ++i)
        if (cursor && !st->collides[i])
            if (const auto* at = cursor->find(cursor_hash(channels[i]))) st->from[i] = *at;
    st->channels = std::move(channels);
    st->done = std::move(done);
    st->pending = st->channels.size();
    auto finish = [st] {
        history_read out;
        out.ok = true;
        out.tip.epoch = "cluster";
        out.tip.time = static_cast<std::int64_t>(std::time(nullptr));
        for (std::size_t i = 0; i < st->parts.size(); ++i) {
            auto& p = st->parts[i];
            if (!p.ok) {
                history_read failed;
                failed.error = st->channels[i] + ": " + p.error;
                return st->done(std::move(failed));
            }
            out.channel_tips.push_back(p.tip);
            out.channel_from.push_back(st->from[i] ? *st->from[i] : p.tip);
            if (p.truncated || (st->collides[i] && st->had_cursor))
                out.truncated.push_back(st->channels[i]);
        }
        // Replay merges the channels by the time of each entry (there is no order across
        // shards to keep), never reordering within a channel.
        std::vector<std::size_t> next(st->parts.size(), 0);
        for (;;) {
            std::size_t best = st->parts.size();
            for (std::size_t i = 0; i < st->parts.size(); ++i) {
                const auto& e = st->parts[i].entries;
                if (next[i] == e.size()) continue;
                if (best == st->parts.size() ||
                    e[next[i]].position.time < st->parts[best].entries[next[best]].position.time)
                    best = i;
            }
            if (best == st->parts.size()) break;
            out.entries.push_back(std::move(st->parts[best].entries[next[best]++]));
        }
        st->done(std::move(out));
    };
    for (std::size_t i = 0; i < st->channels.size(); ++i) {
        const auto& ch = st->channels[i];
        call_function(redis_channel(ch),
                      cluster_history_command(cfg_.redis.prefix, ch, st->from[i]),
                      [st, i, finish](std::optional<reply> r, std::string error) {
                          if (!r)
                              st->parts[i].error = error.empty() ? "no reply" : error;
                          else
                              st->parts[i] = parse_cluster_history_reply(*r, st->channels[i]);
                          if (--st->pending == 0) finish();
                      });
    }
}

void cluster_broker::call_function(const std::string& key, std::vector<std::string> cmd,
                                   command_done done, bool may_load) {
    auto retry = cmd;
    cluster_->execute(
        key, std::move(cmd),
        [this, key, retry = std::move(retry), done = std::move(done),
         may_load](std::optional<reply> r, std::string error) mutable {
            if (!(r && may_load && is_missing_function_error(*r)))
                return done(std::move(r), std::move(error));
            // Without REPLACE: a library another instance installed meanwhile stays (replacing
            // it would reset its writer token and open new epochs for nothing).
            cluster_->execute(
                key, {"FUNCTION", "LOAD", library_source_},
                [this, key, retry = std::move(retry),
                 done = std::move(done)](std::optional<reply> loaded, std::string error) mutable {
                    if (loaded && loaded->type == reply::kind::error &&
                        loaded->str.find("already exists") == std::string::npos)
                        spdlog::error("installing the cluster history functions: {}", loaded->str);
                    else if (loaded && loaded->type == reply::kind::string)
                        spdlog::info("cluster history functions installed on the shard of {}", key);
                    call_function(key, std::move(retry), std::move(done), false);
                });
        });
}

void cluster_broker::when_subscribed(const std::vector<std::string>& channels,
                                     std::function<void()> ready) {
    // History is read once the live feed covers every channel: then nothing published after
    // the read can be missed.
    const bool all_live =
        std::all_of(channels.begin(), channels.end(),
                    [this](const std::string& ch) { return cluster_->is_live(redis_channel(ch)); });
    if (all_live) return ready();
    waiters_.push_back({channels, std::move(ready)});
}

void cluster_broker::recheck_waiters(const std::string* released) {
    if (waiters_.empty()) return;
    std::vector<std::function<void()>> go;
    std::erase_if(waiters_, [&](waiter& w) {
        const bool leave =
            (released &&
             std::find(w.channels.begin(), w.channels.end(), *released) != w.channels.end()) ||
            std::all_of(w.channels.begin(), w.channels.end(), [this](const std::string& ch) {
                return cluster_->is_live(redis_channel(ch));
            });
        if (leave) go.push_back(std::move(w.ready));
        return leave;
    });
    for (auto& f : go) f(); // after the bookkeeping: callbacks may call back into us
}

void cluster_broker::on_subscribed(std::string_view redis_ch) {
    const auto name = channel_of(redis_ch, cfg_.redis.prefix);
    if (name && cfg_.history.enabled) catch_up(std::string(*name));
    recheck_waiters();
}

void cluster_broker::catch_up(std::string channel) {
    // Confirmed on the shard that owns it now: first time, read where its history stands;
    // after a move (sunsubscribe, failover, a dead link), read what came after what was routed.
    const auto from = sink_->begin_channel_catch_up(channel);
    read_catch_up(std::move(channel), from, 1);
}

void cluster_broker::read_catch_up(std::string channel, std::optional<channel_position> from,
                                   unsigned attempt) {
    auto key = redis_channel(channel);
    auto cmd = cluster_history_command(cfg_.redis.prefix, channel, from, true);
    call_function(
        key, std::move(cmd),
        [this, channel = std::move(channel), from, attempt](std::optional<reply> r,
                                                            std::string error) mutable {
            auto h = r ? parse_cluster_history_reply(*r, channel) : channel_history{};
            if (h.ok) {
                if (h.truncated) ++epoch_changes_;
                return sink_->finish_channel_catch_up(channel, h.entries, h.tip, h.truncated);
            }
            if (attempt >= max_catch_up_attempts) {
                spdlog::warn("catching up {} failed {} times ({}); releasing what was held",
                             channel, attempt, r ? h.error : error);
                return sink_->abandon_channel_catch_up(channel);
            }
            // Most often the command link to a node that just took the slot is still
            // connecting: the channel's events stay held (bounded) and the read is tried again.
            auto timer = std::make_shared<boost::asio::steady_timer>(
                ioc_, std::chrono::milliseconds(std::min(100u * attempt, 1000u)));
            timer->async_wait([this, life = std::weak_ptr<int>(life_), timer,
                               channel = std::move(channel), from,
                               attempt](const boost::system::error_code& ec) mutable {
                if (ec || life.expired()) return;
                read_catch_up(std::move(channel), from, attempt + 1);
            });
        });
}

bool cluster_broker::ready() const { return cluster_->connected() && control_->replayed(); }

broker_stats cluster_broker::stats() const {
    broker_stats s;
    s.connected = cluster_->connected();
    s.reconnects = cluster_->reconnects();
    s.subscribed_channels = cluster_->channel_count();
    s.protocol_errors = cluster_->protocol_errors();
    s.tls_failures = cluster_->tls_failures();
    s.cluster = true;
    s.epoch_changes = epoch_changes_;
    s.cluster_map_refreshes = cluster_->map_refreshes();
    s.cluster_moves = cluster_->moves();
    s.cluster_redirects = cluster_->redirects();
    for (const auto& link : cluster_->links())
        s.cluster_links.push_back({link.address, link.connected, link.channels, link.reconnects});
    return s;
}

} // namespace ssegw

namespace ssegw {

void cluster_broker::run_command(const std::string& key, std::vector<std::string> args,
                                 command_done done) {
    cluster_->execute(key, std::move(args), std::move(done));
}

} // namespace ssegw
