#include "ssegw/http/subscribe_request.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

std::optional<subscribe_request> parse(std::string_view q, std::size_t max_topics,
                                       std::string* why = nullptr) {
    subscribe_request_error err;
    auto r = parse_subscribe_request(q, "token", max_topics, err);
    if (why) *why = err.reason;
    return r;
}

TEST(subscribe_request, repeated_topics_user_token_and_last_event_id) {
    auto r = parse("topic=a&topic=b%2Fc&user=42&token=xyz&lastEventId=7-0&_=123", 8);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->topics, (std::vector<std::string>{"a", "b/c"}));
    EXPECT_EQ(r->user, "42");
    EXPECT_EQ(r->token, "xyz");
    EXPECT_EQ(r->last_event_id, "7-0");
}

TEST(subscribe_request, duplicate_topics_count_once) {
    auto r = parse("topic=a&topic=a&topic=a", 1);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->topics.size(), 1u);
}

TEST(subscribe_request, too_many_topics_is_rejected_with_a_reason) {
    std::string why;
    EXPECT_FALSE(parse("topic=a&topic=b&topic=c", 2, &why));
    EXPECT_NE(why.find("too many topics"), std::string::npos);
}

TEST(subscribe_request, invalid_topic_names_and_bad_escapes_are_rejected) {
    std::string why;
    EXPECT_FALSE(parse("topic=", 4, &why));
    EXPECT_FALSE(parse("topic=a%0Ab", 4, &why));
    EXPECT_FALSE(parse("topic=%ZZ", 4, &why));
    EXPECT_EQ(why, "malformed query string");
    EXPECT_FALSE(parse("topic=" + std::string(300, 'x'), 4, &why));
}

TEST(subscribe_request, token_parameter_name_is_configurable) {
    subscribe_request_error err;
    auto r = parse_subscribe_request("access_token=abc&token=ignored", "access_token", 4, err);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->token, "abc");
}

} // namespace
} // namespace ssegw
