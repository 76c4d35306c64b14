#pragma once
// Turns what a subscribe request carries into a principal (auth.mode jwt or none) and checks the
// requested topics against its grants.

#include "ssegw/auth/auth_failure.hpp"
#include "ssegw/auth/jwt_verifier.hpp"
#include "ssegw/auth/principal.hpp"
#include "ssegw/config/config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace ssegw {

/// The credential-bearing parts of a subscribe request; empty views mean "absent". Query values
/// are already percent-decoded. Only borrowed for the duration of authenticate().
struct credentials {
    std::string_view authorization; ///< the Authorization header
    std::string_view cookie_header; ///< the Cookie header
    std::string_view query_token;   ///< ?token= (auth.jwt.query_param)
    std::string_view query_user;    ///< ?user=, used only in auth.mode none
};

/// Thread-safe: both operations are const; one instance serves all shards.
class authenticator {
public:
    /// Throws what jwt_verifier's constructor throws, in mode jwt only (mode none ignores
    /// auth.jwt entirely).
    explicit authenticator(const auth_config& config);

    /// Mode jwt: the token from "Authorization: Bearer", else the auth.jwt.cookie cookie, else the
    /// query token (first present wins, the others are not looked at); 401 "missing token" when
    /// none. Mode none: the user from the query, allowed every topic; 401 when absent/invalid.
    std::variant<principal, auth_failure> authenticate(const credentials& creds) const;

    /// nullopt when every topic is allowed, else a 403 naming the first refused topic. A topic that
    /// is not a valid name (the HTTP layer should have refused it) gives 400 and is not echoed.
    std::optional<auth_failure> check_topics(const principal& who,
                                             const std::vector<std::string>& topics) const;

private:
    auth_mode mode_;
    std::string cookie_name_;
    std::optional<jwt_verifier> verifier_;
};

} // namespace ssegw
