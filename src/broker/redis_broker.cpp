#include "ssegw/broker/redis_broker.hpp"

#include <spdlog/spdlog.h>

#include "ssegw/broker/router.hpp"
#include "ssegw/core/channel.hpp"
#include "ssegw/redis/command_client.hpp"
#include "ssegw/redis/redis_url.hpp"
#include "ssegw/redis/subscriber.hpp"

namespace ssegw {

redis_broker::redis_broker(boost::asio::io_context& ioc, const redis_config& cfg, router& r)
    : cfg_(cfg), router_(r) {
    const auto endpoint = parse_redis_url(cfg.url);
    subscriber_options opts;
    opts.reconnect_min = std::chrono::milliseconds(cfg.reconnect_min_ms);
    opts.reconnect_max = std::chrono::milliseconds(cfg.reconnect_max_ms);
    subscriber_handlers handlers;
    handlers.on_message = [this](std::string_view ch, std::string_view payload) {
        on_message(ch, payload);
    };
    handlers.on_state = [](bool connected) {
        if (connected)
            spdlog::info("redis subscriber connected");
        else
            spdlog::warn("redis subscriber disconnected; reconnecting with backoff");
    };
    subscriber_ = std::make_unique<subscriber>(ioc, endpoint, opts, std::move(handlers));
    commands_ = std::make_unique<command_client>(ioc, endpoint, opts.reconnect_min,
                                                 opts.reconnect_max);
}

redis_broker::~redis_broker() = default;

void redis_broker::start() {
    if (cfg_.mode == subscribe_mode::pattern) subscriber_->psubscribe(cfg_.prefix + "*");
    subscriber_->start();
    commands_->start();
}

void redis_broker::stop() {
    subscriber_->stop();
    commands_->stop();
}

void redis_broker::want(const std::string& channel, bool wanted) {
    if (cfg_.mode == subscribe_mode::pattern) return; // one PSUBSCRIBE covers everything
    if (wanted)
        subscriber_->subscribe(cfg_.prefix + channel);
    else
        subscriber_->unsubscribe(cfg_.prefix + channel);
}

void redis_broker::publish(std::string channel, std::string payload, publish_done done) {
    commands_->execute({"PUBLISH", cfg_.prefix + channel, std::move(payload)},
                       [done = std::move(done)](std::optional<reply> r, std::string error) {
                           if (!done) return;
                           if (!r) return done(false, error);
                           if (r->type == reply::kind::error) return done(false, r->str);
                           done(true, std::to_string(r->integer));
                       });
}

bool redis_broker::ready() const { return subscriber_->connected(); }

broker_stats redis_broker::stats() const {
    broker_stats s;
    s.connected = subscriber_->connected();
    s.reconnects = subscriber_->reconnects();
    s.subscribed_channels = subscriber_->channel_count();
    s.protocol_errors = subscriber_->protocol_errors();
    return s;
}

void redis_broker::on_message(std::string_view redis_channel, std::string_view payload) {
    // A pattern can match channels we do not understand (sse:junk): the router counts those as
    // bad_channel drops.
    auto name = strip_prefix(redis_channel, cfg_.prefix);
    router_.route(name ? *name : std::string_view("?"), payload);
}

} // namespace ssegw
