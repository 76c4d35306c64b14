#include "ssegw/core/text.hpp"

#include <gtest/gtest.h>

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

} // namespace
} // namespace ssegw
