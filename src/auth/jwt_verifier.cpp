#include "ssegw/auth/jwt_verifier.hpp"

#include "ssegw/core/channel.hpp"

#include <jwt/jwt.hpp>
#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <fstream>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <system_error>

namespace ssegw {

namespace {

enum class key_kind { hmac, pem };

struct algorithm_info {
    std::string_view name;
    key_kind key;
    const EVP_MD* (*digest)();
};

// "none" is deliberately absent: an unsigned token must never be accepted, whatever the config.
constexpr std::array<algorithm_info, 9> known_algorithms{{
    {"HS256", key_kind::hmac, &EVP_sha256},
    {"HS384", key_kind::hmac, &EVP_sha384},
    {"HS512", key_kind::hmac, &EVP_sha512},
    {"RS256", key_kind::pem, &EVP_sha256},
    {"RS384", key_kind::pem, &EVP_sha384},
    {"RS512", key_kind::pem, &EVP_sha512},
    {"ES256", key_kind::pem, &EVP_sha256},
    {"ES384", key_kind::pem, &EVP_sha384},
    {"ES512", key_kind::pem, &EVP_sha512},
}};

// The config accepts exactly the algorithms this table implements.
constexpr bool table_matches_config() {
    if (known_algorithms.size() != jwt_algorithm_names.size()) return false;
    for (std::size_t i = 0; i < known_algorithms.size(); ++i)
        if (known_algorithms[i].name != jwt_algorithm_names[i] ||
            (known_algorithms[i].key == key_kind::hmac) !=
                is_hmac_algorithm(jwt_algorithm_names[i]))
            return false;
    return true;
}
static_assert(table_matches_config(),
              "jwt_algorithm_names (config.hpp) and known_algorithms differ");

const algorithm_info* find_algorithm(std::string_view name) noexcept {
    for (const auto& info : known_algorithms)
        if (info.name == name) return &info; // case-sensitive, as RFC 7515 says
    return nullptr;
}

auth_failure unauthorized(std::string reason) { return {401, std::move(reason)}; }

bool is_base64url(char c) noexcept {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/// Latest accepted exp/nbf/iat: 2100-01-01. Far enough for any real token, and small enough
/// that a time_point in nanoseconds (which overflows in 2262) never overflows, leeway included.
constexpr double max_time_claim = 4102444800.0;

struct token_parts {
    std::string_view header, payload, signature;
};

// cpp-jwt's base64 decoder indexes its table with a plain (signed) char: a byte >= 0x80 reads
// outside the table (an assert in debug builds). So only well-formed compact JWS strings reach it.
std::optional<token_parts> split_token(std::string_view token) noexcept {
    if (token.empty() || token.size() > max_token_bytes) return std::nullopt;
    std::size_t dot1 = token.find('.');
    if (dot1 == std::string_view::npos) return std::nullopt;
    std::size_t dot2 = token.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos) return std::nullopt;
    token_parts parts{token.substr(0, dot1), token.substr(dot1 + 1, dot2 - dot1 - 1),
                      token.substr(dot2 + 1)};
    // An empty signature is let through here so an alg "none" token is reported as such.
    if (parts.header.empty() || parts.payload.empty()) return std::nullopt;
    for (std::string_view part : {parts.header, parts.payload, parts.signature})
        if (!std::all_of(part.begin(), part.end(), is_base64url)) return std::nullopt;
    return parts;
}

// cpp-jwt compares HMACs with operator==, which returns at the first differing byte; checking
// first with CRYPTO_memcmp means the library only ever compares signatures that are correct.
bool hmac_matches(const algorithm_info& alg, std::string_view key, const token_parts& parts) {
    std::string signing_input;
    signing_input.reserve(parts.header.size() + 1 + parts.payload.size());
    signing_input.append(parts.header).append(1, '.').append(parts.payload);

    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(alg.digest(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(),
              mac, &mac_len))
        return false;

    std::string expected = jwt::base64_encode(reinterpret_cast<const char*>(mac), mac_len);
    expected.resize(jwt::base64_uri_encode(expected.data(), expected.size()));
    return expected.size() == parts.signature.size() &&
           CRYPTO_memcmp(expected.data(), parts.signature.data(), expected.size()) == 0;
}

std::string reason_for(const std::error_code& ec) {
    using jwt::AlgorithmErrc;
    using jwt::VerificationErrc;
    if (ec == VerificationErrc::InvalidAlgorithm) return "algorithm not allowed";
    if (ec == VerificationErrc::TokenExpired) return "token expired";
    if (ec == VerificationErrc::ImmatureSignature) return "token not yet valid";
    if (ec == VerificationErrc::InvalidIssuer) return "issuer mismatch";
    if (ec == VerificationErrc::InvalidAudience) return "audience mismatch";
    if (ec == VerificationErrc::InvalidSignature || ec == AlgorithmErrc::VerificationErr ||
        ec == AlgorithmErrc::InvalidKeyErr)
        return "invalid signature";
    // Decode errors, and TypeConversionError (an exp/nbf/iss that is not the expected type).
    return "malformed token";
}

bool audience_matches(const nlohmann::json& claims, const std::string& audience) {
    auto it = claims.find("aud");
    if (it == claims.end()) return false;
    if (it->is_string()) return it->get_ref<const std::string&>() == audience;
    if (it->is_array())
        return std::any_of(it->begin(), it->end(), [&](const nlohmann::json& v) {
            return v.is_string() && v.get_ref<const std::string&>() == audience;
        });
    return false;
}

std::string read_public_key(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in)
        throw std::runtime_error("auth.jwt.public_key_file: cannot read " + path + ": " +
                                 std::generic_category().message(errno));
    std::string pem{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    if (in.bad()) throw std::runtime_error("auth.jwt.public_key_file: cannot read " + path);

    // Parse once here so a wrong file fails at start-up instead of as 401s on every connection.
    std::unique_ptr<BIO, decltype(&BIO_free)> bio{
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free};
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{
        bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free};
    if (!key)
        throw std::runtime_error("auth.jwt.public_key_file: " + path +
                                 " holds no PEM public key (-----BEGIN PUBLIC KEY-----)");
    return pem;
}

} // namespace

jwt_verifier::jwt_verifier(const jwt_config& config) : config_(config) {
    if (config_.algorithms.empty()) throw std::runtime_error("auth.jwt.algorithms: list is empty");
    for (const std::string& name : config_.algorithms)
        if (!find_algorithm(name))
            throw std::runtime_error(
                "auth.jwt.algorithms: unsupported algorithm \"" + name +
                "\" (use HS256, RS256, ES256, ...; \"none\" is never allowed)");
    if (!config_.public_key_file.empty())
        public_key_pem_ = read_public_key(config_.public_key_file);
}

std::variant<principal, auth_failure> jwt_verifier::verify(std::string_view token) const {
    try {
        return verify_unguarded(token);
    } catch (...) {
        // cpp-jwt throws from places its error_code API does not cover (nlohmann type errors on
        // odd JSON, allocation failures); none of that may reach the session.
        return unauthorized("malformed token");
    }
}

std::variant<principal, auth_failure> jwt_verifier::verify_unguarded(std::string_view token) const {
    auto parts = split_token(token);
    if (!parts) return unauthorized("malformed token");

    // The key depends on the algorithm, so the header is read before handing over to cpp-jwt:
    // an HS256 token is checked with the secret and never with the PEM text (key confusion).
    auto header =
        nlohmann::json::parse(jwt::base64_uri_decode(parts->header.data(), parts->header.size()),
                              nullptr, /*allow_exceptions=*/false);
    if (!header.is_object()) return unauthorized("malformed token");
    auto alg_it = header.find("alg");
    if (alg_it == header.end() || !alg_it->is_string()) return unauthorized("malformed token");
    const std::string& alg_name = alg_it->get_ref<const std::string&>();

    if (std::find(config_.algorithms.begin(), config_.algorithms.end(), alg_name) ==
        config_.algorithms.end())
        return unauthorized("algorithm not allowed");
    const algorithm_info* alg = find_algorithm(alg_name);
    if (!alg) return unauthorized("algorithm not allowed"); // unreachable: constructor checked
    const std::string& key = alg->key == key_kind::hmac ? config_.secret : public_key_pem_;
    // An empty HMAC key is a key anyone can sign with; a missing PEM verifies nothing.
    if (key.empty()) return unauthorized("algorithm not allowed");
    if (parts->signature.empty()) return unauthorized("malformed token");
    if (alg->key == key_kind::hmac && !hmac_matches(*alg, key, *parts))
        return unauthorized("invalid signature");

    // cpp-jwt converts exp and nbf to uint64 with no range check (undefined behaviour for
    // 1e20 or -1): refuse out-of-range time claims before it sees them.
    {
        auto payload = nlohmann::json::parse(
            jwt::base64_uri_decode(parts->payload.data(), parts->payload.size()), nullptr, false);
        if (!payload.is_object()) return unauthorized("malformed token");
        for (const char* claim : {"exp", "nbf", "iat"}) {
            auto it = payload.find(claim);
            if (it == payload.end()) continue;
            if (!it->is_number()) return unauthorized("malformed token");
            const double v = it->get<double>();
            if (!std::isfinite(v) || v < 0 || v > max_time_claim)
                return unauthorized("malformed token");
        }
    }

    std::error_code ec;
    const auto algorithms = jwt::params::algorithms(std::vector<std::string>{alg_name});
    jwt::jwt_object decoded =
        config_.issuer.empty()
            ? jwt::decode(token, algorithms, ec, jwt::params::secret(key),
                          jwt::params::leeway(config_.leeway_seconds), jwt::params::verify(true))
            : jwt::decode(token, algorithms, ec, jwt::params::secret(key),
                          jwt::params::leeway(config_.leeway_seconds), jwt::params::verify(true),
                          jwt::params::issuer(config_.issuer));
    if (ec) return unauthorized(reason_for(ec));

    const nlohmann::json& claims = decoded.payload().create_json_obj();
    if (!claims.is_object()) return unauthorized("malformed token");

    // cpp-jwt only knows a string "aud"; RFC 7519 also allows an array, which we accept.
    if (!config_.audience.empty() && !audience_matches(claims, config_.audience))
        return unauthorized("audience mismatch");

    principal who;
    auto user_it = claims.find(config_.user_claim);
    if (user_it == claims.end() || user_it->is_null()) return unauthorized("missing user claim");
    if (user_it->is_string())
        who.user = user_it->get<std::string>();
    else if (user_it->is_number_unsigned())
        who.user = std::to_string(user_it->get<std::uint64_t>());
    else if (user_it->is_number_integer())
        who.user = std::to_string(user_it->get<std::int64_t>());
    else
        return unauthorized("invalid user claim");
    if (!is_valid_name(who.user)) return unauthorized("invalid user claim");

    if (auto topics_it = claims.find(config_.topics_claim); topics_it != claims.end()) {
        if (!topics_it->is_array()) return unauthorized("invalid topics claim");
        who.topic_grants.reserve(topics_it->size());
        for (const auto& grant : *topics_it) {
            if (!grant.is_string()) return unauthorized("invalid topics claim");
            who.topic_grants.push_back(grant.get<std::string>());
        }
    }

    if (auto exp_it = claims.find("exp"); exp_it != claims.end()) {
        // cpp-jwt has already accepted exp as a number; a fractional one is truncated.
        if (!exp_it->is_number()) return unauthorized("malformed token");
        double seconds = exp_it->get<double>();
        if (!std::isfinite(seconds) || seconds < 0 || seconds > max_time_claim)
            return unauthorized("malformed token");
        // One deadline for accepting the token and for closing its stream: exp plus the
        // leeway. Closing at exp while still accepting within the leeway made clients reconnect,
        // get accepted and be closed again for the whole leeway instead of getting one 401.
        who.expires_at = std::chrono::system_clock::time_point{
            std::chrono::seconds{static_cast<std::int64_t>(seconds) + config_.leeway_seconds}};
        if (std::chrono::system_clock::now() >= *who.expires_at)
            return unauthorized("token expired");
    }
    if (auto iat_it = claims.find("iat"); iat_it != claims.end() && iat_it->is_number()) {
        // Range-checked with exp and nbf above; fractional seconds are truncated.
        who.issued_at = static_cast<std::int64_t>(iat_it->get<double>());
    }
    // A jti that could not name a revocation (not a string, or not a valid name) is ignored:
    // the token is then revocable only through its user.
    if (auto jti_it = claims.find("jti"); jti_it != claims.end() && jti_it->is_string() &&
                                          is_valid_name(jti_it->get_ref<const std::string&>()))
        who.jti = jti_it->get<std::string>();
    return who;
}

} // namespace ssegw
