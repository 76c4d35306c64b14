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

/// A channel as the functions' declared key: `<prefix>{<channel>}`. Under the prefix, so a Redis
/// ACL limited to `~<prefix>*` allows it (a bare `user:42` would need `~user:*`, which grants
/// the application's own keys of that name), and in the hash slot of the channel's name. The
/// functions also accept the bare channel name, which backends may send.
std::string function_key(std::string_view prefix, std::string_view channel);

/// FCALL sse_publish 1 <prefix>{<channel>} <payload>
std::vector<std::string> publish_command(std::string_view prefix, std::string_view channel,
                                         std::string payload);

/// FCALL sse_history <n> <prefix>{<channel>}... [<epoch> <seq> <time>]
std::vector<std::string> history_command(std::string_view prefix,
                                         const std::vector<std::string>& channels,
                                         const std::optional<stream_position>& from);

/// FCALL sse_note_epoch 0 <routed epoch> <routed seq> <new epoch>: this process routed events up
/// to `routed` and then saw history move to `new_epoch`; what it routed beyond the switch is
/// recorded as lost, so resumes from before it get history-truncated.
std::vector<std::string> note_epoch_command(const stream_position& routed,
                                            std::string_view new_epoch);

/// Decodes sse_history's reply for the channels it was asked about (in that order).
history_read parse_history_reply(const reply& r, const std::vector<std::string>& channels);

/// True when an error reply means the library is not loaded (Redis restarted without data).
bool is_missing_function_error(const reply& r);

/// True when a reply to `FUNCTION LIST LIBRARYNAME <history_library_name> WITHCODE` shows that
/// library installed with exactly `source` as its code.
bool installed_code_matches(const reply& function_list, std::string_view source);

} // namespace ssegw
