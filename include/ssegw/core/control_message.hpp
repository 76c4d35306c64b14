#pragma once
// What POST /disconnect asks for, and the message that carries it to every instance sharing the
// Redis (the channel <prefix>control): close a user's streams, or a token's, and maybe refuse
// the tokens it names for a while. Plain data and JSON, fuzzed (tests/fuzz/control_fuzz.cpp):
// the body comes from a backend, the message from anyone who can PUBLISH on the Redis.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace ssegw {

/// The internal channel name of control messages: on Redis, redis.prefix + "control". Not a
/// user, topic or broadcast channel, so no stream can join it.
inline constexpr std::string_view control_channel = "control";

/// Longest reason accepted, in bytes: it is written to every closed stream.
inline constexpr std::size_t max_reason_bytes = 1024;

/// Reason written when the request names none (EventSource does not dispatch an event whose
/// data is empty, so the page would never see it).
inline constexpr std::string_view default_disconnect_reason = "disconnected";

struct control_message {
    /// Whose streams close: every stream of `user` (when set), or every stream opened with the
    /// token `jti` (when set; both set = that token's streams, which are that user's).
    std::string user;
    std::string jti;
    std::string reason{default_disconnect_reason};
    /// With a user: also refuse that user's tokens issued at or before `at` (iat <= at), and
    /// tokens with no iat, until `until`. A jti is always refused until `until`.
    bool revoke = false;
    std::int64_t at = 0;    ///< unix seconds when the backend asked
    std::int64_t until = 0; ///< unix seconds; the revocation's end (0 = nothing to revoke)

    /// True when it refuses tokens (and so is kept in Redis for instances that start later).
    bool revokes() const noexcept { return until != 0; }
};

/// What a stream keeps of its token's jti (8 bytes, not the string): matched against a
/// disconnect by jti within this process. Never 0, which means "no jti".
inline std::uint64_t jti_tag_of(std::string_view jti) noexcept {
    const auto h = static_cast<std::uint64_t>(std::hash<std::string_view>{}(jti));
    return h == 0 ? 1 : h;
}

/// A POST /disconnect body: {"user": "<id>", "reason": "<text>", "revoke": true} or
/// {"jti": "<id>", "reason": ...} (optionally with "user"). `now` is the request's time, `ttl`
/// auth.revocation_ttl_seconds. The error text says what is wrong (for a 400).
std::variant<control_message, std::string>
parse_disconnect_request(std::string_view body, std::int64_t now, std::uint32_t ttl);

/// The control channel's JSON form of a message (one line).
std::string to_json(const control_message& m);

/// A message read from the control channel; nullopt when it is not one of ours (counted).
std::optional<control_message> parse_control_message(std::string_view text);

} // namespace ssegw
