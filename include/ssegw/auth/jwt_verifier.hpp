#pragma once
// Verifies a subscriber's JWT (HS256 with auth.jwt.secret, RS256/ES256 with the PEM public key)
// and turns its claims into a principal. Signature and time checks are cpp-jwt's; this class
// decides which algorithms and keys are acceptable and maps every failure to a short 401.

#include "ssegw/auth/auth_failure.hpp"
#include "ssegw/auth/principal.hpp"
#include "ssegw/config/config.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace ssegw {

/// Tokens longer than this are refused unparsed; real ones are well under 2 KB, and the request
/// head is capped at server.max_header_bytes anyway.
inline constexpr std::size_t max_token_bytes = 16384;

/// Thread-safe: verify() is const and shares nothing mutable, so one instance serves all shards.
class jwt_verifier {
public:
    /// Throws std::runtime_error (one line, naming the setting) when public_key_file is set but
    /// cannot be read or holds no PEM public key, or when `algorithms` is empty or names an
    /// algorithm other than HS256/384/512, RS256/384/512, ES256/384/512 ("none" included).
    explicit jwt_verifier(const jwt_config& config);

    /// The principal the token proves, or a 401 whose reason never contains the token.
    /// Never throws.
    std::variant<principal, auth_failure> verify(std::string_view token) const;

private:
    std::variant<principal, auth_failure> verify_unguarded(std::string_view token) const;

    jwt_config config_;
    std::string public_key_pem_;
};

} // namespace ssegw
