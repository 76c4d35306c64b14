#include "ssegw/core/query_string.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

TEST(percent_decode, plain_text_is_unchanged) {
    EXPECT_EQ(percent_decode("abc-._~"), "abc-._~");
    EXPECT_EQ(percent_decode(""), "");
}

TEST(percent_decode, plus_and_escapes) {
    EXPECT_EQ(percent_decode("a+b"), "a b");
    EXPECT_EQ(percent_decode("a+b", false), "a+b");
    EXPECT_EQ(percent_decode("a%20b"), "a b");
    EXPECT_EQ(percent_decode("a%2Fb"), "a/b");
    EXPECT_EQ(percent_decode("a%2fb"), "a/b");
    EXPECT_EQ(percent_decode("%2B"), "+");
    EXPECT_EQ(percent_decode("100%25"), "100%");
}

TEST(percent_decode, bad_escapes_are_rejected) {
    EXPECT_EQ(percent_decode("%"), std::nullopt);
    EXPECT_EQ(percent_decode("a%"), std::nullopt);
    EXPECT_EQ(percent_decode("%0"), std::nullopt);
    EXPECT_EQ(percent_decode("%G1"), std::nullopt);
    EXPECT_EQ(percent_decode("%1G"), std::nullopt);
    EXPECT_EQ(percent_decode("%%41"), std::nullopt);
}

TEST(percent_decode, nul_is_rejected) {
    EXPECT_EQ(percent_decode("a%00b"), std::nullopt);
    EXPECT_EQ(percent_decode(std::string_view("a\0b", 3)), std::nullopt);
}

TEST(percent_decode, utf8) {
    EXPECT_EQ(percent_decode("caf%C3%A9"), "café");
    EXPECT_EQ(percent_decode("%E4%B8%96%E7%95%8C"), "世界");
    EXPECT_EQ(percent_decode("%F0%9F%8E%89"), "🎉");
}

TEST(parse_query, repeated_keys_keep_order) {
    auto p = parse_query("topic=a&user=42&topic=b&topic=c");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->size(), 4u);
    EXPECT_EQ((*p)[0].key, "topic");
    EXPECT_EQ((*p)[0].value, "a");
    EXPECT_EQ((*p)[1].key, "user");
    EXPECT_EQ((*p)[1].value, "42");
    EXPECT_EQ((*p)[2].value, "b");
    EXPECT_EQ((*p)[3].value, "c");
}

TEST(parse_query, decodes_keys_and_values) {
    auto p = parse_query("my+key=a+b%20c&t%6Fpic=prices%2Eusd&x=a=b");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->size(), 3u);
    EXPECT_EQ((*p)[0].key, "my key");
    EXPECT_EQ((*p)[0].value, "a b c");
    EXPECT_EQ((*p)[1].key, "topic");
    EXPECT_EQ((*p)[1].value, "prices.usd");
    EXPECT_EQ((*p)[2].key, "x");
    EXPECT_EQ((*p)[2].value, "a=b"); // only the first '=' separates
}

TEST(parse_query, key_without_value_and_empty_pieces) {
    auto p = parse_query("&&flag&a=&=v&");
    ASSERT_TRUE(p);
    ASSERT_EQ(p->size(), 3u);
    EXPECT_EQ((*p)[0].key, "flag");
    EXPECT_EQ((*p)[0].value, "");
    EXPECT_EQ((*p)[1].key, "a");
    EXPECT_EQ((*p)[1].value, "");
    EXPECT_EQ((*p)[2].key, "");
    EXPECT_EQ((*p)[2].value, "v");
}

TEST(parse_query, empty_query) {
    auto p = parse_query("");
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->empty());
    auto q = parse_query("&&&");
    ASSERT_TRUE(q);
    EXPECT_TRUE(q->empty());
}

TEST(parse_query, bad_escape_or_nul_fails_the_whole_query) {
    EXPECT_EQ(parse_query("topic=a&token=%ZZ"), std::nullopt);
    EXPECT_EQ(parse_query("to%pic=a"), std::nullopt);
    EXPECT_EQ(parse_query("topic=a%00"), std::nullopt);
}

TEST(parse_query, too_many_params) {
    EXPECT_TRUE(parse_query("a=1&b=2&c=3", 3));
    EXPECT_EQ(parse_query("a=1&b=2&c=3&d=4", 3), std::nullopt);
    EXPECT_TRUE(parse_query("a=1&&&b=2&&c=3&", 3)); // empty pieces don't count

    std::string many;
    for (int i = 0; i < 257; ++i) many += "topic=x&";
    EXPECT_EQ(parse_query(many), std::nullopt);
    many.resize(many.size() - 8);
    auto ok = parse_query(many);
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->size(), 256u);
}

TEST(split_target, with_and_without_query) {
    auto t = split_target("/events?topic=a&topic=b");
    EXPECT_EQ(t.path, "/events");
    EXPECT_EQ(t.query, "topic=a&topic=b");

    t = split_target("/events");
    EXPECT_EQ(t.path, "/events");
    EXPECT_EQ(t.query, "");

    t = split_target("/events?");
    EXPECT_EQ(t.path, "/events");
    EXPECT_EQ(t.query, "");

    t = split_target("/events?a=1?b=2");
    EXPECT_EQ(t.path, "/events");
    EXPECT_EQ(t.query, "a=1?b=2");

    t = split_target("");
    EXPECT_EQ(t.path, "");
    EXPECT_EQ(t.query, "");
}

TEST(split_target, fragment_is_cut_off) {
    auto t = split_target("/events?topic=a#frag");
    EXPECT_EQ(t.path, "/events");
    EXPECT_EQ(t.query, "topic=a");
    t = split_target("/events#x?y=1");
    EXPECT_EQ(t.path, "/events");
    EXPECT_EQ(t.query, "");
}

} // namespace
} // namespace ssegw
