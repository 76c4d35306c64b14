#include "ssegw/core/channel.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ssegw {
namespace {

TEST(channel, is_valid_name) {
    EXPECT_TRUE(is_valid_name("42"));
    EXPECT_TRUE(is_valid_name("prices.usd"));
    EXPECT_TRUE(is_valid_name("ünïcödé 世界"));
    EXPECT_TRUE(is_valid_name(std::string(max_name_bytes, 'a')));
    EXPECT_FALSE(is_valid_name(std::string(max_name_bytes + 1, 'a')));
    EXPECT_FALSE(is_valid_name(""));
    EXPECT_FALSE(is_valid_name("a\nb"));
    EXPECT_FALSE(is_valid_name("a\rb"));
    EXPECT_FALSE(is_valid_name(std::string_view("a\0b", 3)));
    EXPECT_FALSE(is_valid_name("a\tb"));
    EXPECT_FALSE(is_valid_name("a\x7f"));
}

TEST(channel, builders) {
    EXPECT_EQ(user_channel("42"), "user:42");
    EXPECT_EQ(topic_channel("prices"), "topic:prices");
}

TEST(channel, kind_of) {
    EXPECT_EQ(kind_of("user:42"), channel_kind::user);
    EXPECT_EQ(kind_of("topic:prices"), channel_kind::topic);
    EXPECT_EQ(kind_of("broadcast"), channel_kind::broadcast);
    EXPECT_EQ(kind_of("topic:a:b"), channel_kind::topic); // ':' is allowed inside a name
    EXPECT_EQ(kind_of("user:"), std::nullopt);
    EXPECT_EQ(kind_of("topic:"), std::nullopt);
    EXPECT_EQ(kind_of("user:a\nb"), std::nullopt);
    EXPECT_EQ(kind_of("broadcast:x"), std::nullopt);
    EXPECT_EQ(kind_of("Broadcast"), std::nullopt);
    EXPECT_EQ(kind_of("other:1"), std::nullopt);
    EXPECT_EQ(kind_of(""), std::nullopt);
    EXPECT_EQ(kind_of("user:" + std::string(max_name_bytes + 1, 'a')), std::nullopt);
}

TEST(channel, strip_prefix) {
    EXPECT_EQ(strip_prefix("sse:user:42", "sse:"), "user:42");
    EXPECT_EQ(strip_prefix("sse:topic:prices", "sse:"), "topic:prices");
    EXPECT_EQ(strip_prefix("sse:broadcast", "sse:"), "broadcast");
    EXPECT_EQ(strip_prefix("user:42", ""), "user:42");
    EXPECT_EQ(strip_prefix("other:user:42", "sse:"), std::nullopt);
    EXPECT_EQ(strip_prefix("sse:nonsense", "sse:"), std::nullopt);
    EXPECT_EQ(strip_prefix("sse:", "sse:"), std::nullopt);
    EXPECT_EQ(strip_prefix("ss", "sse:"), std::nullopt);
}

TEST(channel, names_must_be_well_formed_utf8) {
    EXPECT_TRUE(is_valid_name("caf\xc3\xa9"));              // é
    EXPECT_TRUE(is_valid_name("\xe4\xb8\x96\xe7\x95\x8c")); // 世界
    EXPECT_TRUE(is_valid_name("\xf0\x9f\x8e\x89"));         // 🎉
    EXPECT_FALSE(is_valid_name("\xff\xfe"));
    EXPECT_FALSE(is_valid_name("\xc3\x28"));         // bad continuation
    EXPECT_FALSE(is_valid_name("\xc0\xaf"));         // overlong
    EXPECT_FALSE(is_valid_name("\xed\xa0\x80"));     // surrogate
    EXPECT_FALSE(is_valid_name("\xf4\x90\x80\x80")); // past U+10FFFF
    EXPECT_FALSE(is_valid_name("ab\xe4\xb8"));       // truncated
}

} // namespace
} // namespace ssegw
