#include "ssegw/broker/cluster_broker.hpp"

#include "ssegw/broker/control_store.hpp"
#include "ssegw/broker/event_sink.hpp"
#include "ssegw/broker/memory_history.hpp"
#include "ssegw/config/config_loader.hpp"
#include "ssegw/core/channel.hpp"
#include "ssegw/core/control_message.hpp"
#include "ssegw/redis/cluster_subscriber.hpp"

#include <ctime>

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
    : cfg_(cfg), epoch_(random_epoch()) {
    cluster_subscriber_options opts;
    opts.reconnect_min = std::chrono::milliseconds(cfg.redis.reconnect_min_ms);
    opts.reconnect_max = std::chrono::milliseconds(cfg.redis.reconnect_max_ms);
    subscriber_handlers handlers;
    handlers.on_message = [this](std::string_view ch, std::string_view payload) {
        if (ch == control_names_().channel) return control_received(payload, false);
        // A channel we cannot name (another prefix's, junk) is counted as a bad_channel drop.
        const auto name = channel_of(ch, cfg_.redis.prefix);
        sink_->route(name ? *name : std::string_view("?"), payload);
    };
    handlers.on_state = [this](bool up) {
        control_->on_link(up);
        link_changed(up);
    };
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
    control_->stop();
    cluster_->stop();
}

void cluster_broker::want(const std::string& channel, bool wanted) {
    if (wanted)
        cluster_->subscribe(redis_channel(channel));
    else
        cluster_->unsubscribe(redis_channel(channel));
}

void cluster_broker::publish(std::string channel, std::string payload, bool with_history,
                             publish_done done) {
    if (with_history) {
        // Refused by config validation; kept as a clear answer rather than a silent live-only.
        if (done) done(false, "history is not available in cluster mode yet");
        return;
    }
    auto key = redis_channel(channel);
    cluster_->execute(key, {"SPUBLISH", key, std::move(payload)},
                      [done = std::move(done)](std::optional<reply> r, std::string error) {
                          if (!done) return;
                          if (!error.empty()) return done(false, error);
                          done(true, std::to_string(r->integer));
                      });
}

void cluster_broker::read_history(std::vector<std::string>, std::optional<stream_position>,
                                  history_done done) {
    // No history in this mode: nothing is ever owed, so every read is an empty success (the
    // start-up read only needs a tip to hand out).
    history_read none;
    none.ok = true;
    none.tip = {epoch_, 0, static_cast<std::int64_t>(std::time(nullptr))};
    done(std::move(none));
}

void cluster_broker::when_subscribed(const std::vector<std::string>&, std::function<void()> ready) {
    // Only history reads wait for subscriptions, and there are none in this mode.
    ready();
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
