#include "ssegw/core/cluster_cursor.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ssegw {
namespace {

TEST(ClusterCursor, FormatsAndParsesBackTheSameBytes) {
    cluster_cursor c;
    c.components = {{cursor_hash("user:42"), {1764594933123, 17}},
                    {cursor_hash("broadcast"), {1764594933000, 0}},
                    {cursor_hash("topic:news"), {0, 0}}};
    const auto text = c.format();
    EXPECT_EQ(text.substr(0, 2), "2:");
    const auto back = cluster_cursor::parse(text);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->components, c.components);
    EXPECT_EQ(back->format(), text);
    ASSERT_NE(back->find(cursor_hash("user:42")), nullptr);
    EXPECT_EQ(back->find(cursor_hash("user:42"))->seq, 17u);
    EXPECT_EQ(back->find(cursor_hash("user:43")), nullptr);
}

TEST(ClusterCursor, Base36IsCanonical) {
    EXPECT_EQ(to_base36(0), "0");
    EXPECT_EQ(to_base36(35), "z");
    EXPECT_EQ(to_base36(36), "10");
    EXPECT_EQ(to_base36(~std::uint64_t{0}), "3w5e11264sgsf");
    EXPECT_EQ(from_base36("3w5e11264sgsf"), ~std::uint64_t{0});
    EXPECT_FALSE(from_base36("3w5e11264sgsg")); // 2^64: overflow
    EXPECT_FALSE(from_base36("00"));
    EXPECT_FALSE(from_base36("01"));
    EXPECT_FALSE(from_base36("A"));
    EXPECT_FALSE(from_base36(""));
}

TEST(ClusterCursor, HashIsTwentyBits) {
    for (const char* name : {"user:1", "user:2", "broadcast", "topic:x", ""})
        EXPECT_LT(cursor_hash(name), 1u << 20) << name;
    EXPECT_NE(cursor_hash("user:1"), cursor_hash("user:2"));
}

TEST(ClusterCursor, RejectsJunkClearly) {
    for (std::string_view junk :
         {"", "2:", "2", "1:a.b.c", "6931d2f5a1b2c.1042.1764594933", "2:a.b", "2:a.b.c,",
          "2:,a.b.c", "2:a.b.c,,d.e.f", "2:a.b.c.d", "2:A.b.c", "2:a.b.c,a.d.e",
          "2:a.-1.1", "2:a.b.c\n", "2:a. b.c", "2:a.b.3w5e11264sgsg", "2:0a.1.1", "2:mh34.1.1"})
        EXPECT_FALSE(cluster_cursor::parse(junk)) << junk;
    EXPECT_TRUE(cluster_cursor::parse("2:mh33.1.1")); // 2^20 - 1
}

TEST(ClusterCursor, LengthIsBounded) {
    cluster_cursor c;
    for (std::uint32_t i = 0; i < cluster_cursor::max_components; ++i)
        c.components.push_back({i, {~std::uint64_t{0}, ~std::uint64_t{0}}});
    // The widest possible cursor still parses; one component more does not.
    auto text = c.format();
    EXPECT_LE(text.size(), cluster_cursor::max_text_bytes);
    EXPECT_TRUE(cluster_cursor::parse(text));
    EXPECT_FALSE(cluster_cursor::parse(text + ",zz.1.1"));
    // A typical stream: user + broadcast + 32 topics, epochs of today, sequences < 36^4.
    cluster_cursor typical;
    for (std::uint32_t i = 0; i < 34; ++i)
        typical.components.push_back({(1u << 20) - 1 - i, {1764594933123, 1679615}});
    EXPECT_LE(typical.format().size(), 2 + 34 * 19u); // 648 bytes
}

TEST(ClusterCursor, PositionsOrderByEpochThenSeq) {
    EXPECT_LT((channel_position{1, 9}), (channel_position{2, 1}));
    EXPECT_LT((channel_position{2, 1}), (channel_position{2, 2}));
    EXPECT_LT((channel_position{0, 0}), (channel_position{1, 1}));
}

TEST(ClusterEnvelope, SplitsPositionAndPayload) {
    const auto env = parse_cluster_envelope("\x1e"
                                            "2:mif3dyib.h\n{\"data\":1}");
    ASSERT_TRUE(env);
    EXPECT_EQ(env->at.epoch, *from_base36("mif3dyib"));
    EXPECT_EQ(env->at.seq, 17u);
    EXPECT_EQ(env->payload, "{\"data\":1}");
    EXPECT_TRUE(parse_cluster_envelope("\x1e"
                                       "2:1.1\n")); // empty payload
    for (std::string_view junk : {"", "\x1e",
                                  "\x1e"
                                  "2:1.1",
                                  "\x1e"
                                  "2:1\nx",
                                  "\x1e"
                                  "1:1.1\nx",
                                  "2:1.1\nx",
                                  "\x1e"
                                  "2:01.1\nx",
                                  "\x1e"
                                  "6931d.1.2\nx"})
        EXPECT_FALSE(parse_cluster_envelope(junk)) << junk;
}

} // namespace
} // namespace ssegw
