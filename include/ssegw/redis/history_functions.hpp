#pragma once
// The Redis Functions the gateway installs at start (FUNCTION LOAD REPLACE): sse_publish appends
// a payload to its channel's stream and publishes it with its position in one atomic step;
// sse_history reads what a set of channels holds after a position. Configuration (prefix,
// max_len, ttl) is baked into the library text, so every instance sharing a Redis must share
// the history settings.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/core/history.hpp"
#include "ssegw/redis/resp.hpp"

namespace ssegw {

/// Library name; bump the version when the functions' contract changes.
inline constexpr std::string_view history_library_name = "ssegw_v1";

/// The Lua library text. Streams are capped exactly at max_len (oldest entries deleted) and
/// expire ttl_seconds after their last event.
std::string history_library_source(std::string_view prefix, std::uint32_t max_len,
                                   std::uint32_t ttl_seconds);

/// FCALL sse_publish 1 <channel> <payload>
std::vector<std::string> publish_command(std::string_view channel, std::string payload);

/// FCALL sse_history <n> <channels...> [<epoch> <seq> <time>]
std::vector<std::string> history_command(const std::vector<std::string>& channels,
                                         const std::optional<stream_position>& from);

/// Decodes sse_history's reply for the channels it was asked about (in that order).
history_read parse_history_reply(const reply& r, const std::vector<std::string>& channels);

/// True when an error reply means the library is not loaded (Redis restarted without data).
bool is_missing_function_error(const reply& r);

} // namespace ssegw
