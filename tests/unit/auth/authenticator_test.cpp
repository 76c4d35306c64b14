#include "ssegw/auth/authenticator.hpp"

#include <jwt/jwt.hpp>

#include <gtest/gtest.h>

namespace ssegw {
namespace {

constexpr const char* test_secret = "test-only-secret-0123456789abcdef";

std::string token_for(const std::string& user) {
    jwt::jwt_object obj{jwt::params::algorithm("HS256"), jwt::params::secret(test_secret),
                        jwt::params::payload({{"sub", user}})};
    return obj.signature();
}

auth_config jwt_auth() {
    auth_config c;
    c.mode = auth_mode::jwt;
    c.jwt.secret = test_secret;
    return c;
}

std::string user_of(const std::variant<principal, auth_failure>& r) {
    if (auto* p = std::get_if<principal>(&r)) return p->user;
    return "refused: " + std::get<auth_failure>(r).reason;
}

TEST(authenticator, header_wins_over_cookie_and_query) {
    authenticator a{jwt_auth()};
    std::string h = "Bearer " + token_for("from-header");
    std::string c = "x=1; sse_token=" + token_for("from-cookie");
    std::string q = token_for("from-query");
    EXPECT_EQ(user_of(a.authenticate({h, c, q, {}})), "from-header");
    EXPECT_EQ(user_of(a.authenticate({{}, c, q, {}})), "from-cookie");
    EXPECT_EQ(user_of(a.authenticate({{}, {}, q, {}})), "from-query");
    EXPECT_EQ(user_of(a.authenticate({{}, "x=1", q, {}})), "from-query");
}

TEST(authenticator, first_present_source_is_the_only_one_tried) {
    authenticator a{jwt_auth()};
    // A bad token in the header is not rescued by a good one further down.
    auto r = a.authenticate({"Bearer not.a.jwt", {}, token_for("q"), {}});
    ASSERT_TRUE(std::holds_alternative<auth_failure>(r));
    EXPECT_EQ(std::get<auth_failure>(r).status, 401);
}

TEST(authenticator, bearer_scheme_is_case_insensitive) {
    authenticator a{jwt_auth()};
    auto t = token_for("u");
    EXPECT_EQ(user_of(a.authenticate({"bearer " + t, {}, {}, {}})), "u");
    EXPECT_EQ(user_of(a.authenticate({"BEARER   " + t + "  ", {}, {}, {}})), "u");
    // Other schemes are not ours: fall through to the next source.
    EXPECT_EQ(user_of(a.authenticate({"Basic dXNlcjpwYXNz", {}, t, {}})), "u");
    EXPECT_EQ(user_of(a.authenticate({"Bearer", {}, t, {}})), "u");
    EXPECT_EQ(user_of(a.authenticate({"Bearerx " + t, {}, {}, {}})), "refused: missing token");
}

TEST(authenticator, custom_cookie_name) {
    auto config = jwt_auth();
    config.jwt.cookie = "auth";
    authenticator a{config};
    EXPECT_EQ(user_of(a.authenticate({{}, "sse_token=junk; auth=" + token_for("c"), {}, {}})), "c");
}

TEST(authenticator, missing_token) {
    authenticator a{jwt_auth()};
    auto r = a.authenticate({});
    ASSERT_TRUE(std::holds_alternative<auth_failure>(r));
    EXPECT_EQ(std::get<auth_failure>(r).status, 401);
    EXPECT_EQ(std::get<auth_failure>(r).reason, "missing token");
    // In jwt mode a bare ?user= is no credential.
    EXPECT_EQ(user_of(a.authenticate({{}, {}, {}, "alice"})), "refused: missing token");
}

TEST(authenticator, mode_none_takes_user_from_query) {
    auth_config config;
    config.mode = auth_mode::none; // jwt section left at defaults (no secret): must not matter
    authenticator a{config};
    auto r = a.authenticate({"Bearer whatever", {}, {}, "alice"});
    ASSERT_TRUE(std::holds_alternative<principal>(r));
    const auto& p = std::get<principal>(r);
    EXPECT_EQ(p.user, "alice");
    EXPECT_EQ(p.topic_grants, std::vector<std::string>{"*"});
    EXPECT_FALSE(p.expires_at);
    EXPECT_FALSE(a.check_topics(p, {"anything", "prices.eur"}));

    for (std::string_view bad : {std::string_view{}, std::string_view{"a\r\nb"}}) {
        auto f = a.authenticate({{}, {}, {}, bad});
        ASSERT_TRUE(std::holds_alternative<auth_failure>(f));
        EXPECT_EQ(std::get<auth_failure>(f).status, 401);
        EXPECT_EQ(std::get<auth_failure>(f).reason, "missing or invalid user");
    }
}

TEST(authenticator, check_topics_names_first_refused_topic) {
    authenticator a{jwt_auth()};
    principal p{"u", {"news", "prices.*"}, std::nullopt};
    EXPECT_FALSE(a.check_topics(p, {}));
    EXPECT_FALSE(a.check_topics(p, {"news", "prices.eur"}));
    auto f = a.check_topics(p, {"news", "secret", "other"});
    ASSERT_TRUE(f);
    EXPECT_EQ(f->status, 403);
    EXPECT_EQ(f->reason, "topic not allowed: secret");

    auto bad = a.check_topics(p, {"news", "evil\r\nX-Injected: 1"});
    ASSERT_TRUE(bad);
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(bad->reason.find('\n'), std::string::npos);
}

TEST(authenticator, constructor_checks_jwt_config_only_in_jwt_mode) {
    auth_config config;
    config.jwt.public_key_file = "/nonexistent/key.pem";
    config.mode = auth_mode::none;
    EXPECT_NO_THROW(authenticator{config});
    config.mode = auth_mode::jwt;
    EXPECT_THROW(authenticator{config}, std::runtime_error);
}

} // namespace
} // namespace ssegw
