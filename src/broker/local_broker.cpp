#include "ssegw/broker/local_broker.hpp"

#include <cstdio>
#include <ctime>
#include <random>

#include "ssegw/broker/event_sink.hpp"

namespace ssegw {

namespace {

std::int64_t unix_now() { return static_cast<std::int64_t>(std::time(nullptr)); }

} // namespace

local_broker::local_broker(const history_config& cfg)
    : history_(cfg.max_len, cfg.ttl_seconds, random_epoch()) {}

void local_broker::start(event_sink& sink) {
    sink_ = &sink;
    link_changed(true);
}

void local_broker::publish(std::string channel, std::string payload, bool with_history,
                           publish_done done) {
    if (!with_history) {
        sink_->route(channel, payload);
        sink_->flush();
        if (done) done(true, "");
        return;
    }
    const auto pos = history_.append(channel, payload, unix_now());
    const auto id = pos.format();
    sink_->route_history(channel, pos, id, payload);
    sink_->flush();
    if (done) done(true, id);
}

void local_broker::send_control(std::string message, std::int64_t, publish_done done) {
    control_received(message, false);
    if (done) done(true, "1");
}

void local_broker::read_history(std::vector<std::string> channels,
                                std::optional<stream_position> from, history_done done) {
    done(history_.read(channels, from, unix_now()));
}

} // namespace ssegw
