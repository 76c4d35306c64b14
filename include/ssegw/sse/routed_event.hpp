#pragma once
// One event on its way from the router to the shards whose sessions joined its channel. Built
// once per event per process and shared read-only by every shard it is posted to.

#include <chrono>
#include <memory>
#include <string>

#include "ssegw/sse/frame.hpp"

namespace ssegw {

struct routed_event {
    std::string channel; ///< internal name: "user:42", "topic:news", "broadcast"
    frame bytes;         ///< the complete SSE block
    std::chrono::steady_clock::time_point received_at; ///< when the process got it
};

using routed_event_ptr = std::shared_ptr<const routed_event>;

} // namespace ssegw
