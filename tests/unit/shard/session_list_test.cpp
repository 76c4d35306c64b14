#include "ssegw/shard/session_list.hpp"

#include <algorithm>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace ssegw {
namespace {

// The list never dereferences sessions, so distinct (aligned) addresses stand in for them.
session* fake(int& slot) { return reinterpret_cast<session*>(&slot); }

std::vector<session*> sorted(const session_list& l) {
    std::vector<session*> out(l.begin(), l.end());
    std::sort(out.begin(), out.end());
    return out;
}

TEST(session_list, one_two_many_and_back_to_one) {
    int a = 0, b = 0, c = 0;
    session_list l;
    EXPECT_TRUE(l.empty());
    EXPECT_EQ(l.begin(), l.end());
    l.push_back(fake(a));
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(*l.begin(), fake(a));
    l.push_back(fake(b));
    l.push_back(fake(c));
    std::vector<session*> all = {fake(a), fake(b), fake(c)};
    std::sort(all.begin(), all.end());
    EXPECT_EQ(sorted(l), all);
    EXPECT_TRUE(l.erase(fake(a)));
    EXPECT_TRUE(l.erase(fake(c)));
    ASSERT_EQ(l.size(), 1u); // held inline again
    EXPECT_EQ(*l.begin(), fake(b));
    EXPECT_TRUE(l.erase(fake(b)));
    EXPECT_TRUE(l.empty());
}

TEST(session_list, erasing_what_is_not_there_changes_nothing) {
    int a = 0, b = 0, c = 0;
    session_list l;
    EXPECT_FALSE(l.erase(fake(a)));
    EXPECT_FALSE(l.erase(nullptr));
    l.push_back(fake(a));
    EXPECT_FALSE(l.erase(fake(b)));
    EXPECT_EQ(l.size(), 1u);
    l.push_back(fake(b));
    EXPECT_FALSE(l.erase(fake(c)));
    EXPECT_EQ(l.size(), 2u);
}

TEST(session_list, moves_hand_over_the_vector) {
    int a = 0, b = 0;
    session_list l;
    l.push_back(fake(a));
    l.push_back(fake(b));
    session_list moved(std::move(l));
    EXPECT_TRUE(l.empty()); // NOLINT(bugprone-use-after-move): moved-from is empty by contract
    EXPECT_EQ(moved.size(), 2u);
    session_list assigned;
    assigned.push_back(fake(a));
    assigned = std::move(moved);
    EXPECT_EQ(assigned.size(), 2u);
    EXPECT_TRUE(moved.empty()); // NOLINT(bugprone-use-after-move)
}

} // namespace
} // namespace ssegw
