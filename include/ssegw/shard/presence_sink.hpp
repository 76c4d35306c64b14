#pragma once
// Where a shard's presence changes end up: the presence service, on the control loop. A shard
// gathers its streams' openings and closings for presence.flush_ms and sends them as one
// report, so a burst of connects costs one message per shard, not one per connection.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ssegw {

/// One stream opened or closed (only with presence.lifecycle_stream).
struct stream_lifecycle {
    bool opened = true;
    std::string user;
    std::string topics; ///< the topics it joined, comma-separated
    std::string reason; ///< why it closed (close_reason_names)
    std::uint32_t duration_seconds = 0;
};

struct presence_report {
    /// Net change of each user's open streams on the shard over the interval (never 0).
    std::vector<std::pair<std::string, std::int32_t>> deltas;
    std::vector<stream_lifecycle> lifecycle;
};

class presence_sink {
public:
    virtual void on_presence(unsigned shard_id, presence_report report) = 0;

protected:
    ~presence_sink() = default;
};

} // namespace ssegw
