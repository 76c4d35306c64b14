#pragma once
// Frames whose `id:` differs per session (Redis Cluster history: each session's id is its own
// composite cursor, core/cluster_cursor.hpp). The event's lines are built once and shared, as for
// every other frame; a session writes them followed by its own `id: ...\n\n` tail, as two
// buffers of the same gathered write. Costs per delivery: one small allocation for the tail.

#include <string_view>

#include "ssegw/sse/frame.hpp"

namespace ssegw {

/// build_frame's block without an `id:` line and without the blank line that ends it (the
/// payload's own id, if any, is checked and replaced, as with a forced id). A session appends
/// make_id_tail() to complete it.
frame_result build_frame_body(std::string_view payload, std::size_t max_payload_bytes);

/// `id: <id>\n\n`: ends a body with the session's own id. Null when id has CR, LF or NUL.
frame make_id_tail(std::string_view id);

} // namespace ssegw
