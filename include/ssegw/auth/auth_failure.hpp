#pragma once
// Why a subscriber was refused; the HTTP layer turns it into a plain-text error response.

#include <string>

namespace ssegw {

/// A permanent refusal: 401 for missing/bad credentials, 403 for a topic the user may not join.
/// `reason` is short, safe to log and to send back: it never contains the token.
struct auth_failure {
    int status;
    std::string reason;
};

} // namespace ssegw
