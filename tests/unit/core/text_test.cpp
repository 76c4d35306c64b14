#include "ssegw/core/text.hpp"

#include <gtest/gtest.h>

#include <cstdint>

namespace ssegw {
namespace {

TEST(bearer_token, takes_the_credential_of_the_bearer_scheme_only) {
    EXPECT_EQ(bearer_token("Bearer abc"), "abc");
    EXPECT_EQ(bearer_token("  bEaReR \t abc  "), "abc");
    EXPECT_EQ(bearer_token("Bearer"), "");
    EXPECT_EQ(bearer_token("Bearer "), "");
    EXPECT_EQ(bearer_token("Bearerabc"), "");
    EXPECT_EQ(bearer_token("Basic abc"), "");
    EXPECT_EQ(bearer_token(""), "");
}

TEST(constant_time_equal, matches_exactly_the_expected_secret) {
    EXPECT_TRUE(constant_time_equal("secret", "secret"));
    EXPECT_FALSE(constant_time_equal("secret", "secreT"));
    EXPECT_FALSE(constant_time_equal("secret", "secret1"));
    EXPECT_FALSE(constant_time_equal("secret", "secre"));
    EXPECT_FALSE(constant_time_equal("secret", ""));
    // A presented value that repeats the secret is not the secret.
    EXPECT_FALSE(constant_time_equal("ab", "abab"));
    // No configured secret matches nothing, not even the empty string.
    EXPECT_FALSE(constant_time_equal("", ""));
}

TEST(parse_whole_number, takes_every_character_or_nothing) {
    std::uint64_t u = 7;
    EXPECT_TRUE(parse_whole_number("18446744073709551615", u));
    EXPECT_EQ(u, 18446744073709551615ULL);
    EXPECT_FALSE(parse_whole_number("18446744073709551616", u)); // out of range
    EXPECT_FALSE(parse_whole_number("", u));
    EXPECT_FALSE(parse_whole_number("12 ", u));
    EXPECT_FALSE(parse_whole_number(" 12", u));
    EXPECT_FALSE(parse_whole_number("+12", u));
    EXPECT_FALSE(parse_whole_number("-1", u)); // no sign for unsigned types
    EXPECT_FALSE(parse_whole_number("1x", u));
    std::int64_t i = 0;
    EXPECT_TRUE(parse_whole_number("-42", i));
    EXPECT_EQ(i, -42);
    std::uint16_t port = 0;
    EXPECT_TRUE(parse_whole_number("65535", port));
    EXPECT_FALSE(parse_whole_number("65536", port));
}

} // namespace
} // namespace ssegw
