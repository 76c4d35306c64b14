#pragma once
// Standalone mode (redis.url "none"): no Redis, a publish goes straight to the router.

#include "ssegw/broker/broker.hpp"

namespace ssegw {

class router;

class local_broker final : public broker {
public:
    explicit local_broker(router& r) : router_(r) {}
    void start() override {}
    void stop() override {}
    void want(const std::string&, bool) override {}
    void publish(std::string channel, std::string payload, publish_done done) override;
    bool ready() const override { return true; }
    broker_stats stats() const override { return {}; }

private:
    router& router_;
};

} // namespace ssegw
