#pragma once
// Channel names as the gateway uses them internally: "user:<id>", "topic:<name>", "broadcast".
// On Redis each is prefixed with redis.prefix ("sse:" by default).

#include <optional>
#include <string>
#include <string_view>

namespace ssegw {

enum class channel_kind { user, topic, broadcast };

inline constexpr std::string_view broadcast_channel = "broadcast";

/// Longest user id or topic name accepted, in bytes.
inline constexpr std::size_t max_name_bytes = 256;

/// A user id or topic name is 1..max_name_bytes bytes of well-formed UTF-8 with no control
/// characters (CR/LF/NUL would corrupt a frame or a log line).
bool is_valid_name(std::string_view name) noexcept;

std::string user_channel(std::string_view user_id);
std::string topic_channel(std::string_view topic);

/// Kind of an internal channel name, or nullopt when it is none of the three forms.
std::optional<channel_kind> kind_of(std::string_view channel) noexcept;

/// "sse:user:42" -> "user:42" when it starts with prefix and is a valid channel, else nullopt.
std::optional<std::string_view> strip_prefix(std::string_view redis_channel,
                                             std::string_view prefix) noexcept;

} // namespace ssegw
