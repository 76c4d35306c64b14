#pragma once
// Redis mode: one pub/sub subscriber per process (what the shards need, or one pattern), plus a
// command connection for /publish. Incoming messages go to the router with the prefix removed.

#include <memory>

#include <boost/asio/io_context.hpp>

#include "ssegw/broker/broker.hpp"
#include "ssegw/config/config.hpp"

namespace ssegw {

class router;
class subscriber;
class command_client;

class redis_broker final : public broker {
public:
    /// Throws std::invalid_argument when redis.url does not parse.
    redis_broker(boost::asio::io_context& ioc, const redis_config& cfg, router& r);
    ~redis_broker() override;

    void start() override;
    void stop() override;
    void want(const std::string& channel, bool wanted) override;
    void publish(std::string channel, std::string payload, publish_done done) override;
    bool ready() const override;
    broker_stats stats() const override;

private:
    void on_message(std::string_view redis_channel, std::string_view payload);

    const redis_config& cfg_;
    router& router_;
    std::unique_ptr<subscriber> subscriber_;
    std::unique_ptr<command_client> commands_;
};

} // namespace ssegw
