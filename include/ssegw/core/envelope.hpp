#pragma once
// How a history event travels on a pub/sub channel: sse_publish (the Redis Function) publishes
// "\x1e<position>\n<payload>", so every instance learns the event's resume position along with
// the payload the backend wrote. A message without the marker is a live-only PUBLISH.

#include <optional>
#include <string_view>

#include "ssegw/core/stream_position.hpp"

namespace ssegw {

/// First byte of an enveloped message (ASCII record separator: never starts JSON or text).
inline constexpr char envelope_marker = '\x1e';

struct envelope {
    stream_position position;
    std::string_view id_text; ///< the position exactly as published (becomes the `id:` line)
    std::string_view payload;
};

/// Splits an enveloped message; nullopt when it has no marker or a malformed position.
std::optional<envelope> parse_envelope(std::string_view message) noexcept;

} // namespace ssegw
