#include "ssegw/auth/cookie.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

TEST(find_cookie, finds_a_cookie_among_others) {
    EXPECT_EQ(find_cookie("a=1; sse_token=xyz", "sse_token"), "xyz");
    EXPECT_EQ(find_cookie("sse_token=xyz; a=1", "sse_token"), "xyz");
    EXPECT_EQ(find_cookie("sse_token=xyz", "sse_token"), "xyz");
}

TEST(find_cookie, absent_or_empty) {
    EXPECT_EQ(find_cookie("", "sse_token"), std::nullopt);
    EXPECT_EQ(find_cookie("a=1; b=2", "sse_token"), std::nullopt);
    EXPECT_EQ(find_cookie("a=1", ""), std::nullopt);
    EXPECT_EQ(find_cookie("sse_token=", "sse_token"), "");
}

TEST(find_cookie, name_must_match_exactly) {
    EXPECT_EQ(find_cookie("xsse_token=1; sse_token_2=2", "sse_token"), std::nullopt);
    EXPECT_EQ(find_cookie("SSE_TOKEN=1", "sse_token"), std::nullopt);
    // The name is not found inside another cookie's value either.
    EXPECT_EQ(find_cookie("a=sse_token=evil", "sse_token"), std::nullopt);
}

TEST(find_cookie, whitespace_quotes_and_separators) {
    EXPECT_EQ(find_cookie("  a=1 ;   sse_token = xyz  ", "sse_token"), "xyz");
    EXPECT_EQ(find_cookie("a=1;sse_token=xyz;", "sse_token"), "xyz");
    EXPECT_EQ(find_cookie("sse_token=\"xyz\"", "sse_token"), "xyz");
    EXPECT_EQ(find_cookie("sse_token=\"", "sse_token"), "\"");
    EXPECT_EQ(find_cookie(";;; ; sse_token=xyz", "sse_token"), "xyz");
}

TEST(find_cookie, value_may_contain_equals_and_first_match_wins) {
    EXPECT_EQ(find_cookie("sse_token=a.b=c", "sse_token"), "a.b=c");
    EXPECT_EQ(find_cookie("sse_token=first; sse_token=second", "sse_token"), "first");
}

TEST(find_cookie, malformed_pairs_are_skipped) {
    EXPECT_EQ(find_cookie("garbage; sse_token=xyz", "sse_token"), "xyz");
    EXPECT_EQ(find_cookie("sse_token", "sse_token"), std::nullopt);
}

} // namespace
} // namespace ssegw
