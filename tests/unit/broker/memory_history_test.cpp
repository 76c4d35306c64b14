// Standalone history: the same replay and truncation rules as the Redis Functions.

#include "ssegw/broker/memory_history.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

TEST(memory_history, replays_what_follows_a_position_across_channels_in_order) {
    memory_history h(100, 3600, "ab");
    auto p0 = h.append("user:1", "u0", 1000);
    h.append("topic:t", "t1", 1000);
    h.append("user:2", "other", 1000);
    h.append("user:1", "u3", 1001);
    auto r = h.read({"user:1", "topic:t"}, p0, 1002);
    ASSERT_TRUE(r.ok);
    ASSERT_EQ(r.entries.size(), 2u);
    EXPECT_EQ(r.entries[0].payload, "t1");
    EXPECT_EQ(r.entries[1].payload, "u3");
    EXPECT_EQ(r.tip.seq, 4u);
    EXPECT_TRUE(r.truncated.empty());
}

TEST(memory_history, trimming_is_flagged_only_when_it_reached_past_the_position) {
    memory_history h(3, 3600, "ab");
    auto p0 = h.append("user:1", "e0", 1000);
    stream_position p6;
    for (int i = 1; i < 10; ++i) {
        std::string payload = "e";
        payload += std::to_string(i);
        auto p = h.append("user:1", payload, 1000);
        if (i == 6) p6 = p;
    }
    auto r = h.read({"user:1"}, p0, 1000);
    EXPECT_EQ(r.truncated, std::vector<std::string>{"user:1"});
    ASSERT_EQ(r.entries.size(), 3u);
    EXPECT_EQ(r.entries.front().payload, "e7");
    auto r6 = h.read({"user:1"}, p6, 1000);
    EXPECT_TRUE(r6.truncated.empty());
    EXPECT_EQ(r6.entries.size(), 3u);
}

TEST(memory_history, expiry_and_foreign_positions) {
    memory_history h(10, 60, "ab");
    auto p = h.append("user:1", "x", 1000);
    EXPECT_TRUE(h.read({"user:1"}, p, 1030).truncated.empty());
    // Expired a whole TTL after the last event, and the position is that old.
    EXPECT_EQ(h.read({"user:1"}, p, 1100).truncated, std::vector<std::string>{"user:1"});
    EXPECT_TRUE(h.read({"user:1"}, stream_position{"cd", 1, 1000}, 1000).unknown_position);
    EXPECT_TRUE(h.read({"user:1"}, stream_position{"ab", 99, 1000}, 1000).unknown_position);
    auto fresh = h.read({"user:1"}, std::nullopt, 1000);
    EXPECT_TRUE(fresh.entries.empty());
    EXPECT_EQ(fresh.tip.seq, 1u);
}

} // namespace
} // namespace ssegw
