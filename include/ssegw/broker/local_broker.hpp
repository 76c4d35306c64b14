#pragma once
// Standalone mode (redis.url "none"): no Redis. A publish goes straight to the event sink, and
// history lives in an in-memory ring per channel with the same positions and semantics.

#include "ssegw/broker/broker.hpp"
#include "ssegw/broker/memory_history.hpp"
#include "ssegw/config/config.hpp"

namespace ssegw {

class local_broker final : public broker {
public:
    explicit local_broker(const history_config& cfg);
    void start(event_sink& sink) override;
    void stop() override {}
    void want(const std::string&, bool) override {}
    void publish(std::string channel, std::string payload, bool with_history,
                 publish_done done) override;
    void read_history(std::vector<std::string> channels, std::optional<stream_position> from,
                      history_done done) override;
    void when_subscribed(const std::vector<std::string>&, std::function<void()> ready) override {
        ready(); // in-process fan-out: registered means subscribed
    }
    /// In-process: handed straight to the control handler; nothing outlives the process.
    void send_control(std::string message, std::int64_t keep_until, publish_done done) override;
    bool ready() const override { return true; }
    broker_stats stats() const override { return {}; }

private:
    event_sink* sink_ = nullptr; ///< set by start()
    memory_history history_;
};

} // namespace ssegw
