// Fuzzes subscriber authentication: jwt_verifier::verify, find_cookie and
// authenticator::authenticate, with HS256 and the secret "fuzz-secret".
//
// Input layout (see corpus/jwt/): byte 0 picks how the rest is used:
//   0 a raw token         1 the Authorization header   2 the Cookie header
//   3 the ?token= value   4 "<header JSON>\n<claims JSON>", signed here with the fuzz secret, so
//   the claim handling behind the signature check is reached too   5 ?user= in auth.mode none.
// Whatever the bytes, nothing may throw or crash, a refusal is a 401 that never echoes the token,
// and an accepted user is a valid name.

#include "fuzz_check.hpp"

#include "ssegw/auth/authenticator.hpp"
#include "ssegw/auth/cookie.hpp"
#include "ssegw/auth/jwt_verifier.hpp"
#include "ssegw/core/channel.hpp"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace {

constexpr std::string_view secret = "fuzz-secret";

ssegw::auth_config make_config(ssegw::auth_mode mode, bool with_claims_checks) {
    ssegw::auth_config c;
    c.mode = mode;
    c.jwt.secret = std::string(secret);
    c.jwt.algorithms = {"HS256"};
    if (with_claims_checks) {
        c.jwt.issuer = "https://issuer.example";
        c.jwt.audience = "sse";
    }
    return c;
}

// Built once: the verifiers are immutable, as in the gateway (one instance for all shards).
const ssegw::authenticator& jwt_auth() {
    static const ssegw::authenticator a(make_config(ssegw::auth_mode::jwt, false));
    return a;
}
const ssegw::jwt_verifier& strict_verifier() {
    static const ssegw::jwt_verifier v(make_config(ssegw::auth_mode::jwt, true).jwt);
    return v;
}
const ssegw::authenticator& none_auth() {
    static const ssegw::authenticator a(make_config(ssegw::auth_mode::none, false));
    return a;
}

std::string base64url(std::string_view in) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::uint32_t acc = 0;
    int bits = 0;
    for (unsigned char c : in) {
        acc = (acc << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(alphabet[(acc >> bits) & 0x3f]);
        }
    }
    if (bits > 0) out.push_back(alphabet[(acc << (6 - bits)) & 0x3f]);
    return out;
}

std::string sign_hs256(std::string_view header_json, std::string_view claims_json) {
    std::string token = base64url(header_json) + "." + base64url(claims_json);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
         reinterpret_cast<const unsigned char*>(token.data()), token.size(), mac, &mac_len);
    token += '.';
    token += base64url(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
    return token;
}

void check_outcome(const std::variant<ssegw::principal, ssegw::auth_failure>& outcome,
                   std::string_view secret_material) {
    if (const auto* failure = std::get_if<ssegw::auth_failure>(&outcome)) {
        SSEGW_FUZZ_CHECK(failure->status == 401);
        SSEGW_FUZZ_CHECK(!failure->reason.empty());
        // The reason is logged and sent back: it must never carry the credential. Refusals use
        // a closed set of fixed texts, which is stronger than looking for the token in them (a
        // short input can be a substring of "missing token" without anything leaking).
        static constexpr std::string_view fixed_reasons[] = {
            "missing token",         "missing or invalid user", "malformed token",
            "token expired",         "token not yet valid",     "invalid signature",
            "algorithm not allowed", "audience mismatch",       "issuer mismatch",
            "missing user claim",    "invalid user claim",      "invalid topics claim"};
        bool fixed = false;
        for (auto r : fixed_reasons) fixed = fixed || failure->reason == r;
        SSEGW_FUZZ_CHECK(fixed);
        (void)secret_material;
        return;
    }
    const auto& who = std::get<ssegw::principal>(outcome);
    SSEGW_FUZZ_CHECK(ssegw::is_valid_name(who.user));
    for (const char* topic : {"news", "chat.room1", "a", "*"}) (void)who.may_join(topic);
    std::vector<std::string> topics{"news", "chat.room1"};
    for (const auto& g : who.topic_grants)
        if (ssegw::is_valid_name(g)) topics.push_back(g);
    if (const auto refused = jwt_auth().check_topics(who, topics))
        SSEGW_FUZZ_CHECK(refused->status == 403 || refused->status == 400);
}

void check_cookie(std::string_view header, std::string_view name) {
    const auto value = ssegw::find_cookie(header, name);
    if (!value) return;
    SSEGW_FUZZ_CHECK(value->empty() ||
                     (value->data() >= header.data() &&
                      value->data() + value->size() <= header.data() + header.size()));
    SSEGW_FUZZ_CHECK(value->find(';') == std::string_view::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
    ssegw::credentials creds;
    switch (data[0] % 6) {
    case 0:
        check_outcome(jwt_auth().authenticate({.query_token = rest}), rest);
        check_outcome(strict_verifier().verify(rest), rest);
        break;
    case 1:
        creds.authorization = rest;
        check_outcome(jwt_auth().authenticate(creds), rest);
        break;
    case 2:
        creds.cookie_header = rest;
        check_outcome(jwt_auth().authenticate(creds), {});
        check_cookie(rest, "sse_token");
        check_cookie(rest, "a");
        check_cookie(rest, "");
        break;
    case 3:
        creds.query_token = rest;
        check_outcome(jwt_auth().authenticate(creds), rest);
        break;
    case 4: {
        const auto nl = rest.find('\n');
        const std::string token = nl == std::string_view::npos
                                      ? sign_hs256(R"({"alg":"HS256","typ":"JWT"})", rest)
                                      : sign_hs256(rest.substr(0, nl), rest.substr(nl + 1));
        check_outcome(jwt_auth().authenticate({.query_token = token}), token);
        check_outcome(strict_verifier().verify(token), token);
        break;
    }
    case 5: {
        creds.query_user = rest;
        const auto outcome = none_auth().authenticate(creds);
        SSEGW_FUZZ_CHECK(std::holds_alternative<ssegw::principal>(outcome) ==
                         ssegw::is_valid_name(rest));
        check_outcome(outcome, {});
        break;
    }
    }
    return 0;
}
