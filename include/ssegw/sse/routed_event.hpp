#pragma once
// One event on its way from the router to the shards whose sessions joined its channel. Built
// once per event per process and shared read-only by every shard and session it reaches.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ssegw/core/cluster_cursor.hpp"
#include "ssegw/sse/frame.hpp"

namespace ssegw {

struct routed_event {
    std::string channel; ///< internal name: "user:42", "topic:news", "broadcast"
    frame bytes;         ///< the complete SSE block
    /// History events: their global sequence (sessions skip what they already have) and a
    /// position block (make_position_frame), which a session keeps as where it stands.
    std::uint64_t seq = 0;
    std::uint32_t epoch = 0; ///< epoch_tag() of the sequence's epoch
    frame position;
    /// A live-only event whose payload set its own `id:`: the session re-sends its position
    /// right after, so the Last-Event-ID a browser sends back stays one the gateway understands.
    bool moves_last_event_id = false;
    /// Redis Cluster history: `bytes` is a body without its `id:` line and blank line
    /// (sse/frame_body.hpp); each session ends it with its own composite cursor, moved to `at`
    /// for this channel.
    bool per_session_id = false;
    channel_position at;
    std::chrono::steady_clock::time_point received_at; ///< when the process got it
};

using routed_event_ptr = std::shared_ptr<const routed_event>;

} // namespace ssegw
