#include "ssegw/auth/jwt_verifier.hpp"

#include <jwt/jwt.hpp>
#include <nlohmann/json.hpp>
#include <openssl/hmac.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace ssegw {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const fs::path fixtures = fs::path(__FILE__).parent_path() / "fixtures";
constexpr const char* test_secret = "test-only-secret-0123456789abcdef";

std::string read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::int64_t now_s() {
    return std::chrono::duration_cast<std::chrono::seconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string b64url(std::string_view bytes) {
    std::string s = jwt::base64_encode(bytes.data(), bytes.size());
    s.resize(jwt::base64_uri_encode(s.data(), s.size()));
    return s;
}

/// Signs with cpp-jwt's own encoder (HS* takes the secret, RS*/ES* a PEM private key).
std::string sign(const std::string& alg, const std::string& key, const json& claims) {
    jwt::jwt_object obj{jwt::params::algorithm(alg), jwt::params::secret(key)};
    for (const auto& [name, value] : claims.items()) obj.payload().add_claim(name, value);
    return obj.signature();
}

/// Builds a token by hand, for what the encoder refuses to produce (odd headers or payloads,
/// empty keys). An empty `key` leaves the signature part empty.
std::string handmade(const std::string& header, const std::string& payload,
                     std::optional<std::string> key) {
    std::string input = b64url(header) + "." + b64url(payload);
    if (!key) return input + ".";
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key->data(), static_cast<int>(key->size()),
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return input + "." + b64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

jwt_config hs_config() {
    jwt_config c;
    c.secret = test_secret;
    c.algorithms = {"HS256"};
    return c;
}

jwt_config pem_config(const std::string& alg, const std::string& public_key) {
    jwt_config c;
    c.algorithms = {alg};
    c.public_key_file = (fixtures / public_key).string();
    return c;
}

json claims_for(const std::string& sub) { return {{"sub", sub}, {"exp", now_s() + 600}}; }

void expect_failure(const std::variant<principal, auth_failure>& result, const std::string& reason,
                    std::string_view token) {
    ASSERT_TRUE(std::holds_alternative<auth_failure>(result)) << "expected: " << reason;
    const auto& failure = std::get<auth_failure>(result);
    EXPECT_EQ(failure.status, 401);
    EXPECT_EQ(failure.reason, reason);
    if (token.size() > 3) {
        EXPECT_EQ(failure.reason.find(token), std::string::npos);
    }
}

principal expect_principal(const std::variant<principal, auth_failure>& result) {
    if (auto* p = std::get_if<principal>(&result)) return *p;
    ADD_FAILURE() << "refused: " << std::get<auth_failure>(result).reason;
    return {};
}

TEST(jwt_verifier, hs256_accepts_valid_token) {
    jwt_verifier v{hs_config()};
    auto exp = now_s() + 600;
    auto token = sign("HS256", test_secret,
                      {{"sub", "alice"}, {"exp", exp}, {"topics", {"news", "prices.*"}}});
    principal p = expect_principal(v.verify(token));
    EXPECT_EQ(p.user, "alice");
    EXPECT_EQ(p.topic_grants, (std::vector<std::string>{"news", "prices.*"}));
    ASSERT_TRUE(p.expires_at);
    // The stream's deadline is the token's: exp plus the (default 30 s) leeway.
    EXPECT_EQ(std::chrono::system_clock::to_time_t(*p.expires_at), exp + 30);
    EXPECT_TRUE(p.may_join("prices.eur"));
    EXPECT_FALSE(p.may_join("pricesX"));
}

TEST(jwt_verifier, token_without_exp_or_topics) {
    jwt_verifier v{hs_config()};
    principal p = expect_principal(v.verify(sign("HS256", test_secret, {{"sub", "bob"}})));
    EXPECT_EQ(p.user, "bob");
    EXPECT_TRUE(p.topic_grants.empty());
    EXPECT_FALSE(p.expires_at);
}

TEST(jwt_verifier, wrong_secret_is_rejected) {
    jwt_verifier v{hs_config()};
    auto token = sign("HS256", "another-secret", claims_for("alice"));
    expect_failure(v.verify(token), "invalid signature", token);
}

TEST(jwt_verifier, tampered_payload_is_rejected) {
    jwt_verifier v{hs_config()};
    auto token = sign("HS256", test_secret, claims_for("alice"));
    auto dot1 = token.find('.'), dot2 = token.find('.', dot1 + 1);
    auto forged =
        token.substr(0, dot1 + 1) + b64url(claims_for("mallory").dump()) + token.substr(dot2);
    expect_failure(v.verify(forged), "invalid signature", forged);
}

TEST(jwt_verifier, time_claims_past_2100_are_malformed) {
    // 41802444798 s is year 3294: as a nanosecond time_point it would overflow (found by the
    // fuzzer under UBSan). A far but sane exp still works.
    jwt_verifier v{hs_config()};
    auto far = sign("HS256", test_secret, {{"sub", "a"}, {"exp", 41802444798LL}});
    expect_failure(v.verify(far), "malformed token", far);
    auto nbf = sign("HS256", test_secret, {{"sub", "a"}, {"nbf", 5000000000LL}});
    expect_failure(v.verify(nbf), "malformed token", nbf);
    expect_principal(v.verify(sign("HS256", test_secret, {{"sub", "a"}, {"exp", 4000000000LL}})));
}

TEST(jwt_verifier, expired_token_is_rejected) {
    jwt_verifier v{hs_config()};
    auto token = sign("HS256", test_secret, {{"sub", "alice"}, {"exp", now_s() - 120}});
    expect_failure(v.verify(token), "token expired", token);
}

TEST(jwt_verifier, nbf_in_future_is_rejected) {
    jwt_verifier v{hs_config()};
    auto token = sign("HS256", test_secret, {{"sub", "alice"}, {"nbf", now_s() + 120}});
    expect_failure(v.verify(token), "token not yet valid", token);
}

TEST(jwt_verifier, leeway_is_honoured) {
    jwt_verifier v{hs_config()}; // default leeway 30 s
    expect_principal(v.verify(sign("HS256", test_secret, {{"sub", "a"}, {"exp", now_s() - 10}})));
    expect_principal(v.verify(sign("HS256", test_secret, {{"sub", "a"}, {"nbf", now_s() + 10}})));

    auto strict = hs_config();
    strict.leeway_seconds = 0;
    jwt_verifier s{strict};
    auto expired = sign("HS256", test_secret, {{"sub", "a"}, {"exp", now_s() - 10}});
    expect_failure(s.verify(expired), "token expired", expired);
    auto early = sign("HS256", test_secret, {{"sub", "a"}, {"nbf", now_s() + 10}});
    expect_failure(s.verify(early), "token not yet valid", early);
}

TEST(jwt_verifier, acceptance_and_stream_deadline_agree) {
    // A token is accepted exactly while its stream may stay open: a reconnect after the stream
    // was closed for expiry is refused, never accepted and closed again.
    auto cfg = hs_config();
    cfg.leeway_seconds = 5;
    jwt_verifier v{cfg};
    const auto exp = now_s() - 3; // expired, inside the leeway
    principal p =
        expect_principal(v.verify(sign("HS256", test_secret, {{"sub", "a"}, {"exp", exp}})));
    ASSERT_TRUE(p.expires_at);
    EXPECT_EQ(std::chrono::system_clock::to_time_t(*p.expires_at), exp + 5);
    // At the deadline itself (cpp-jwt alone would still accept it): refused.
    auto at_deadline = sign("HS256", test_secret, {{"sub", "a"}, {"exp", now_s() - 5}});
    expect_failure(v.verify(at_deadline), "token expired", at_deadline);
}

TEST(jwt_verifier, alg_none_is_rejected) {
    jwt_verifier v{hs_config()};
    std::string payload = claims_for("alice").dump();
    for (const char* header : {R"({"alg":"none"})", R"({"alg":"none","typ":"JWT"})",
                               R"({"alg":"NONE"})", R"({"alg":"None"})"}) {
        auto token = handmade(header, payload, std::nullopt);
        expect_failure(v.verify(token), "algorithm not allowed", token);
    }
    // The same with a junk signature appended, and with the trailing dot missing.
    auto with_sig = handmade(R"({"alg":"none"})", payload, std::nullopt) + "AAAA";
    expect_failure(v.verify(with_sig), "algorithm not allowed", with_sig);
    auto two_parts = b64url(R"({"alg":"none"})") + "." + b64url(payload);
    expect_failure(v.verify(two_parts), "malformed token", two_parts);
}

TEST(jwt_verifier, alg_is_case_sensitive) {
    jwt_verifier v{hs_config()};
    auto token =
        handmade(R"({"alg":"hs256","typ":"JWT"})", claims_for("alice").dump(), test_secret);
    expect_failure(v.verify(token), "algorithm not allowed", token);
}

TEST(jwt_verifier, rs256_token_against_hs256_config_is_rejected) {
    jwt_verifier v{hs_config()};
    auto token = sign("RS256", read_file(fixtures / "rs256_private.pem"), claims_for("alice"));
    expect_failure(v.verify(token), "algorithm not allowed", token);
}

TEST(jwt_verifier, hs256_signed_with_public_key_against_rs256_config_is_rejected) {
    jwt_verifier v{pem_config("RS256", "rs256_public.pem")};
    auto token = sign("HS256", read_file(fixtures / "rs256_public.pem"), claims_for("alice"));
    expect_failure(v.verify(token), "algorithm not allowed", token);
}

TEST(jwt_verifier, hs256_signed_with_public_key_fails_even_when_both_families_allowed) {
    auto config = pem_config("RS256", "rs256_public.pem");
    config.algorithms = {"RS256", "HS256"};
    config.secret = test_secret;
    jwt_verifier v{config};
    auto token = sign("HS256", read_file(fixtures / "rs256_public.pem"), claims_for("alice"));
    expect_failure(v.verify(token), "invalid signature", token);
    expect_principal(v.verify(sign("HS256", test_secret, claims_for("alice"))));
    expect_principal(
        v.verify(sign("RS256", read_file(fixtures / "rs256_private.pem"), claims_for("alice"))));
}

TEST(jwt_verifier, empty_secret_never_verifies) {
    auto config = hs_config();
    config.secret.clear();
    jwt_verifier v{config};
    auto token =
        handmade(R"({"alg":"HS256","typ":"JWT"})", claims_for("alice").dump(), std::string{});
    expect_failure(v.verify(token), "algorithm not allowed", token);
}

TEST(jwt_verifier, malformed_strings_are_rejected) {
    jwt_verifier v{hs_config()};
    std::mt19937 rng(42);
    std::string junk(10 * 1024, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    std::string junk_with_dots = junk;
    junk_with_dots[100] = '.';
    junk_with_dots[200] = '.';
    std::string long_b64(10 * 1024, 'A');
    long_b64[3000] = '.';
    long_b64[6000] = '.';
    auto valid = sign("HS256", test_secret, claims_for("alice"));

    for (const std::string& token :
         {std::string{}, std::string{"a.b"}, std::string{"a.b.c"}, std::string{".."},
          std::string{"..."}, std::string{"a..c"}, std::string{"\xff\xfe.\x80\x81.\x00\x01", 8},
          junk, junk_with_dots, long_b64, std::string(20000, 'A'), valid + ".extra", valid + "=",
          " " + valid, valid.substr(0, valid.size() - 1) + "+",
          b64url("not json") + "." + b64url("{}") + ".c2ln",
          b64url(R"({"alg":5})") + "." + b64url("{}") + ".c2ln",
          b64url(R"(["HS256"])") + "." + b64url("{}") + ".c2ln",
          b64url(R"({"typ":"JWT"})") + "." + b64url("{}") + ".c2ln"}) {
        auto result = v.verify(token);
        ASSERT_TRUE(std::holds_alternative<auth_failure>(result))
            << "accepted: " << token.substr(0, 40);
        EXPECT_EQ(std::get<auth_failure>(result).status, 401);
        EXPECT_TRUE(std::get<auth_failure>(result).reason == "malformed token" ||
                    std::get<auth_failure>(result).reason == "invalid signature")
            << std::get<auth_failure>(result).reason;
    }
}

TEST(jwt_verifier, correctly_signed_but_odd_payloads_are_rejected) {
    jwt_verifier v{hs_config()};
    const std::string header = R"({"alg":"HS256","typ":"JWT"})";
    for (const std::string& payload :
         {std::string{"[1,2]"}, std::string{"\"str\""}, std::string{"not json"},
          std::string{R"({"sub":"a","exp":"tomorrow"})"},
          std::string{R"({"sub":"a","exp":-100})"}}) {
        auto token = handmade(header, payload, test_secret);
        auto result = v.verify(token);
        ASSERT_TRUE(std::holds_alternative<auth_failure>(result)) << payload;
        EXPECT_EQ(std::get<auth_failure>(result).status, 401) << payload;
    }
    auto typ = handmade(R"({"alg":"HS256","typ":"other"})", claims_for("a").dump(), test_secret);
    expect_failure(v.verify(typ), "malformed token", typ);
}

TEST(jwt_verifier, user_claim_rules) {
    jwt_verifier v{hs_config()};
    auto missing = sign("HS256", test_secret, {{"exp", now_s() + 600}});
    expect_failure(v.verify(missing), "missing user claim", missing);

    EXPECT_EQ(expect_principal(v.verify(sign("HS256", test_secret, {{"sub", 42}}))).user, "42");
    EXPECT_EQ(expect_principal(v.verify(sign("HS256", test_secret, {{"sub", -7}}))).user, "-7");

    for (const json& bad : {json("line\nbreak"), json(""), json(true), json(1.5),
                            json::array({"a"}), json(std::string(300, 'x'))}) {
        auto token = sign("HS256", test_secret, {{"sub", bad}});
        expect_failure(v.verify(token), "invalid user claim", token);
    }
}

TEST(jwt_verifier, custom_user_and_topics_claims) {
    auto config = hs_config();
    config.user_claim = "uid";
    config.topics_claim = "scope_topics";
    jwt_verifier v{config};
    principal p = expect_principal(v.verify(sign(
        "HS256", test_secret, {{"uid", "carol"}, {"sub", "ignored"}, {"scope_topics", {"x"}}})));
    EXPECT_EQ(p.user, "carol");
    EXPECT_EQ(p.topic_grants, std::vector<std::string>{"x"});
    auto no_uid = sign("HS256", test_secret, {{"sub", "dave"}});
    expect_failure(v.verify(no_uid), "missing user claim", no_uid);
}

TEST(jwt_verifier, topics_claim_must_be_array_of_strings) {
    jwt_verifier v{hs_config()};
    for (const json& bad :
         {json("news"), json(1), json::object({{"a", 1}}), json::array({"news", 1})}) {
        auto token = sign("HS256", test_secret, {{"sub", "alice"}, {"topics", bad}});
        expect_failure(v.verify(token), "invalid topics claim", token);
    }
    EXPECT_TRUE(expect_principal(
                    v.verify(sign("HS256", test_secret, {{"sub", "a"}, {"topics", json::array()}})))
                    .topic_grants.empty());
}

TEST(jwt_verifier, audience_checked_only_when_configured) {
    jwt_verifier open{hs_config()};
    expect_principal(open.verify(sign("HS256", test_secret, {{"sub", "a"}, {"aud", "whatever"}})));

    auto config = hs_config();
    config.audience = "sse-gateway";
    jwt_verifier v{config};
    expect_principal(v.verify(sign("HS256", test_secret, {{"sub", "a"}, {"aud", "sse-gateway"}})));
    expect_principal(
        v.verify(sign("HS256", test_secret, {{"sub", "a"}, {"aud", {"api", "sse-gateway"}}})));
    for (const json& claims :
         {json{{"sub", "a"}, {"aud", "api"}}, json{{"sub", "a"}, {"aud", {"api"}}},
          json{{"sub", "a"}, {"aud", 5}}, json{{"sub", "a"}}}) {
        auto token = sign("HS256", test_secret, claims);
        expect_failure(v.verify(token), "audience mismatch", token);
    }
}

TEST(jwt_verifier, issuer_checked_only_when_configured) {
    jwt_verifier open{hs_config()};
    expect_principal(open.verify(sign("HS256", test_secret, {{"sub", "a"}, {"iss", "anyone"}})));

    auto config = hs_config();
    config.issuer = "https://auth.example";
    jwt_verifier v{config};
    expect_principal(
        v.verify(sign("HS256", test_secret, {{"sub", "a"}, {"iss", "https://auth.example"}})));
    for (const json& claims :
         {json{{"sub", "a"}, {"iss", "https://evil.example"}}, json{{"sub", "a"}}}) {
        auto token = sign("HS256", test_secret, claims);
        expect_failure(v.verify(token), "issuer mismatch", token);
    }
}

TEST(jwt_verifier, rs256_accepts_fixture_key) {
    jwt_verifier v{pem_config("RS256", "rs256_public.pem")};
    auto token = sign("RS256", read_file(fixtures / "rs256_private.pem"), claims_for("rsa-user"));
    EXPECT_EQ(expect_principal(v.verify(token)).user, "rsa-user");

    auto dot2 = token.rfind('.');
    auto forged = token.substr(0, dot2 + 1) + std::string(token.size() - dot2 - 1, 'A');
    expect_failure(v.verify(forged), "invalid signature", forged);
}

TEST(jwt_verifier, es256_accepts_fixture_key) {
    jwt_verifier v{pem_config("ES256", "es256_public.pem")};
    auto token = sign("ES256", read_file(fixtures / "es256_private.pem"), claims_for("ec-user"));
    EXPECT_EQ(expect_principal(v.verify(token)).user, "ec-user");

    auto other = sign("ES256", read_file(fixtures / "es256_private.pem"), claims_for("x"));
    auto spliced = token.substr(0, token.rfind('.')) + other.substr(other.rfind('.'));
    expect_failure(v.verify(spliced), "invalid signature", spliced);
}

TEST(jwt_verifier, key_of_the_wrong_type_fails_cleanly) {
    // ES256 allowed but the configured key is RSA: every ES256 token fails, none is accepted.
    jwt_verifier v{pem_config("ES256", "rs256_public.pem")};
    auto token = sign("ES256", read_file(fixtures / "es256_private.pem"), claims_for("x"));
    expect_failure(v.verify(token), "invalid signature", token);
}

TEST(jwt_verifier, constructor_refuses_bad_configuration) {
    EXPECT_THROW(jwt_verifier{pem_config("RS256", "does_not_exist.pem")}, std::runtime_error);
    EXPECT_THROW(jwt_verifier{pem_config("RS256", "README.md")}, std::runtime_error);
    auto config = hs_config();
    config.algorithms = {"none"};
    EXPECT_THROW(jwt_verifier{config}, std::runtime_error);
    config.algorithms = {"HS256", "PS256"};
    EXPECT_THROW(jwt_verifier{config}, std::runtime_error);
    config.algorithms = {};
    EXPECT_THROW(jwt_verifier{config}, std::runtime_error);

    try {
        jwt_verifier{pem_config("RS256", "does_not_exist.pem")};
    } catch (const std::runtime_error& e) {
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
        EXPECT_NE(std::string(e.what()).find("public_key_file"), std::string::npos);
    }
}

} // namespace
} // namespace ssegw
