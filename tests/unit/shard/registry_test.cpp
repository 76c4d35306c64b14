#include "ssegw/shard/registry.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

// The registry never dereferences sessions, so distinct addresses stand in for them.
session* fake(int& slot) { return reinterpret_cast<session*>(&slot); }

TEST(registry, first_add_and_last_remove_report_presence_changes) {
    registry r;
    int a = 0, b = 0;
    EXPECT_TRUE(r.add("user:42", fake(a)));
    EXPECT_FALSE(r.add("user:42", fake(b)));
    EXPECT_EQ(r.find("user:42")->size(), 2u);
    EXPECT_FALSE(r.remove("user:42", fake(a)));
    EXPECT_EQ(r.find("user:42")->size(), 1u);
    EXPECT_TRUE(r.remove("user:42", fake(b)));
    EXPECT_EQ(r.find("user:42"), nullptr);
    EXPECT_EQ(r.channel_count(), 0u);
}

TEST(registry, removing_unknown_session_or_channel_changes_nothing) {
    registry r;
    int a = 0, b = 0;
    r.add("broadcast", fake(a));
    EXPECT_FALSE(r.remove("broadcast", fake(b)));
    EXPECT_FALSE(r.remove("topic:x", fake(a)));
    EXPECT_EQ(r.find("broadcast")->size(), 1u);
}

TEST(registry, channels_are_independent) {
    registry r;
    int a = 0;
    r.add("user:1", fake(a));
    r.add("topic:t", fake(a));
    r.add("broadcast", fake(a));
    EXPECT_EQ(r.channel_count(), 3u);
    EXPECT_TRUE(r.remove("topic:t", fake(a)));
    EXPECT_NE(r.find("user:1"), nullptr);
    EXPECT_NE(r.find("broadcast"), nullptr);
}

} // namespace
} // namespace ssegw
