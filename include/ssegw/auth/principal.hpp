#pragma once
// Who a stream belongs to and what it may join, as established by the authenticator.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

/// An authenticated user. Copied into the session; immutable once built.
struct principal {
    std::string user;
    /// Topic grants: "*" (everything), "prefix*" / "prefix.*" (every topic starting with the
    /// part before the '*'), anything else an exact topic name.
    std::vector<std::string> topic_grants;
    /// The token's "exp" plus auth.jwt.leeway_seconds: the token is refused from then on and
    /// its stream is closed then. nullopt = no expiry (mode none, or a token without exp).
    std::optional<std::chrono::system_clock::time_point> expires_at;
    /// The token's "iat" (unix seconds) and "jti", when it has them: what POST /disconnect's
    /// revocations are checked against.
    std::optional<std::int64_t> issued_at;
    std::string jti;

    /// True when some grant allows the topic.
    bool may_join(std::string_view topic) const;
};

} // namespace ssegw
