#include "ssegw/auth/authenticator.hpp"

#include "ssegw/auth/cookie.hpp"
#include "ssegw/core/channel.hpp"
#include "ssegw/core/text.hpp"

namespace ssegw {

authenticator::authenticator(const auth_config& config)
    : mode_(config.mode), cookie_name_(config.jwt.cookie) {
    if (mode_ == auth_mode::jwt) verifier_.emplace(config.jwt);
}

std::variant<principal, auth_failure> authenticator::authenticate(const credentials& creds) const {
    if (mode_ == auth_mode::none) {
        if (!is_valid_name(creds.query_user)) return auth_failure{401, "missing or invalid user"};
        return principal{std::string(creds.query_user), {"*"}, std::nullopt};
    }

    std::string_view token = bearer_token(creds.authorization);
    if (token.empty() && !creds.cookie_header.empty())
        token = find_cookie(creds.cookie_header, cookie_name_).value_or(std::string_view{});
    if (token.empty()) token = creds.query_token;
    if (token.empty()) return auth_failure{401, "missing token"};
    return verifier_->verify(token);
}

std::optional<auth_failure>
authenticator::check_topics(const principal& who, const std::vector<std::string>& topics) const {
    for (const std::string& topic : topics) {
        // Echoing a name with CR/LF/NUL would corrupt the response or a log line.
        if (!is_valid_name(topic)) return auth_failure{400, "invalid topic name"};
        if (!who.may_join(topic)) return auth_failure{403, "topic not allowed: " + topic};
    }
    return std::nullopt;
}

} // namespace ssegw
