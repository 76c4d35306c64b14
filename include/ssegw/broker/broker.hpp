#pragma once
// Where events come from and where /publish sends them: Redis pub/sub across instances, or the
// process itself in standalone mode. Everything here runs on the control thread.

#include <cstdint>
#include <functional>
#include <string>

namespace ssegw {

struct broker_stats {
    bool connected = false;
    std::uint64_t reconnects = 0;
    std::uint64_t subscribed_channels = 0;
    std::uint64_t protocol_errors = 0;
};

class broker {
public:
    /// Completion of a publish: ok, and a short text (an id, or an error) for the caller.
    using publish_done = std::function<void(bool ok, std::string detail)>;

    virtual ~broker() = default;
    virtual void start() = 0;
    virtual void stop() = 0;
    /// The process needs (or no longer needs) events of an internal channel name.
    virtual void want(const std::string& channel, bool wanted) = 0;
    /// Publishes a payload to an internal channel name on every instance.
    virtual void publish(std::string channel, std::string payload, publish_done done) = 0;
    /// True while events can flow (always, standalone).
    virtual bool ready() const = 0;
    virtual broker_stats stats() const = 0;
};

} // namespace ssegw
