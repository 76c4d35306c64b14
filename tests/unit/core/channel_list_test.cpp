#include "ssegw/core/channel_list.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ssegw {
namespace {

TEST(channel_list, keeps_names_in_order) {
    const std::vector<std::string> names = {"user:u12345", "broadcast", "", "topic:t3"};
    const channel_list list(names);
    ASSERT_EQ(list.size(), 4u);
    EXPECT_EQ(list.front(), "user:u12345");
    EXPECT_EQ(list.to_vector(), names);
    std::vector<std::string> walked;
    for (const auto name : list) walked.emplace_back(name);
    EXPECT_EQ(walked, names);
}

TEST(channel_list, index_of_finds_each_name_or_says_size) {
    const channel_list list({"user:42", "broadcast", "topic:a", "user:43"});
    EXPECT_EQ(list.index_of("user:42"), 0u);
    EXPECT_EQ(list.index_of("broadcast"), 1u);
    EXPECT_EQ(list.index_of("user:43"), 3u);
    EXPECT_EQ(list.index_of("topic:b"), 4u);
    EXPECT_EQ(list.index_of("user:4"), 4u); // a prefix is not the name
}

TEST(channel_list, empty_and_moved_from_lists_have_no_names) {
    channel_list none;
    EXPECT_TRUE(none.empty());
    EXPECT_EQ(none.begin(), none.end());
    EXPECT_EQ(none.index_of("broadcast"), 0u);
    EXPECT_TRUE(channel_list(std::vector<std::string>{}).empty());
    channel_list one({"broadcast"});
    channel_list taken(std::move(one));
    EXPECT_EQ(taken.size(), 1u);
    EXPECT_TRUE(one.empty()); // NOLINT(bugprone-use-after-move): a unique_ptr inside
}

TEST(channel_list, names_up_to_the_length_field_and_no_further) {
    const std::string longest(65535, 'x');
    const channel_list list({longest, "broadcast"});
    EXPECT_EQ(list.front(), longest);
    EXPECT_EQ(list.index_of("broadcast"), 1u);
    EXPECT_THROW(channel_list({longest + "x"}), std::length_error);
}

} // namespace
} // namespace ssegw
