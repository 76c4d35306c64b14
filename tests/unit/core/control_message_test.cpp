#include "ssegw/core/control_message.hpp"
#include "ssegw/core/revocation_list.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

control_message parsed(std::string_view body, std::int64_t now = 1000, std::uint32_t ttl = 60) {
    auto r = parse_disconnect_request(body, now, ttl);
    if (auto* e = std::get_if<std::string>(&r)) ADD_FAILURE() << *e;
    return std::get<control_message>(r);
}

std::string error_of(std::string_view body) {
    auto r = parse_disconnect_request(body, 1000, 60);
    return std::holds_alternative<std::string>(r) ? std::get<std::string>(r) : "";
}

TEST(control_message, disconnect_bodies) {
    auto m = parsed(R"({"user":"42","reason":"bye"})");
    EXPECT_EQ(m.user, "42");
    EXPECT_EQ(m.reason, "bye");
    EXPECT_FALSE(m.revokes());
    m = parsed(R"({"user":"42","revoke":true})");
    EXPECT_EQ(m.reason, default_disconnect_reason);
    EXPECT_TRUE(m.revoke);
    EXPECT_EQ(m.at, 1000);
    EXPECT_EQ(m.until, 1060);
    m = parsed(R"({"jti":"t1"})");
    EXPECT_EQ(m.until, 1060); // a jti is always revoked
    EXPECT_FALSE(m.revoke);
}

TEST(control_message, bad_bodies_say_why) {
    EXPECT_EQ(error_of("nope"), "body must be a JSON object");
    EXPECT_EQ(error_of("{}"), R"(name a "user" or a "jti")");
    EXPECT_NE(error_of(R"({"user":"a","x":1})").find("unknown field"), std::string::npos);
    EXPECT_NE(error_of(R"({"jti":"a","revoke":true})").find("needs a \"user\""), std::string::npos);
    EXPECT_NE(error_of(R"({"user":"a","reason":")" + std::string(1025, 'x') + R"("})")
                  .find("longer than"),
              std::string::npos);
    EXPECT_NE(error_of(R"({"user":"a\u0000"})").find("\"user\""), std::string::npos);
}

TEST(control_message, round_trips_through_the_channel_form) {
    auto m = parsed(R"({"user":"42","jti":"j","reason":"a\nb","revoke":true})");
    auto back = parse_control_message(to_json(m));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->user, "42");
    EXPECT_EQ(back->jti, "j");
    EXPECT_EQ(back->reason, "a\nb");
    EXPECT_TRUE(back->revoke);
    EXPECT_EQ(back->at, 1000);
    EXPECT_EQ(back->until, 1060);
    // A revocation without an end, or with a time out of range, is not ours.
    EXPECT_FALSE(parse_control_message(R"({"user":"1","revoke":true,"at":5})"));
    EXPECT_FALSE(parse_control_message(R"({"jti":"x"})"));
    EXPECT_FALSE(parse_control_message(R"({"jti":"x","until":-1})"));
    EXPECT_FALSE(parse_control_message(R"({"jti":"x","until":1e300})"));
    EXPECT_TRUE(parse_control_message(R"({"user":"1"})"));
    // An end on a plain disconnect (found by the fuzzer: a misspelt "revoke").
    EXPECT_FALSE(parse_control_message(R"({"user":"1","revlke":true,"until":5})"));
}

TEST(revocation_list, users_by_iat_and_tokens_by_jti_until_their_end) {
    revocation_list list;
    list.add(parsed(R"({"user":"u","revoke":true})")); // at 1000, until 1060
    EXPECT_TRUE(list.refuses("u", 999, "", 1001));
    EXPECT_TRUE(list.refuses("u", 1000, "", 1001)); // issued in the revoke's second
    EXPECT_TRUE(list.refuses("u", std::nullopt, "", 1001));
    EXPECT_FALSE(list.refuses("u", 1001, "", 1001));
    EXPECT_FALSE(list.refuses("v", 999, "", 1001));
    EXPECT_FALSE(list.refuses("u", 999, "", 1060)); // ended
    list.add(parsed(R"({"jti":"j"})"));
    EXPECT_TRUE(list.refuses("v", 5000, "j", 1001));
    EXPECT_FALSE(list.refuses("v", 5000, "k", 1001));
    // A plain disconnect revokes nothing.
    list.add(parsed(R"({"user":"w"})"));
    EXPECT_EQ(list.size(), 2u);
    // A later revoke moves the bound; a replayed older one does not move it back.
    list.add(parsed(R"({"user":"u","revoke":true})", 2000));
    list.add(parsed(R"({"user":"u","revoke":true})", 1000));
    EXPECT_TRUE(list.refuses("u", 1500, "", 2001));
    list.expire(1060);
    EXPECT_EQ(list.size(), 1u); // the jti ended; u's second revoke lasts to 2060
    list.expire(2060);
    EXPECT_EQ(list.size(), 0u);
}

} // namespace
} // namespace ssegw
