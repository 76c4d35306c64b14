#include "ssegw/core/presence_query.hpp"

#include "ssegw/core/channel.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

std::vector<std::string> users_of(std::string_view q) {
    auto r = parse_presence_query(q);
    if (auto* problem = std::get_if<std::string>(&r)) ADD_FAILURE() << q << ": " << *problem;
    auto* users = std::get_if<std::vector<std::string>>(&r);
    return users ? *users : std::vector<std::string>{};
}

bool refused(std::string_view q) {
    return std::holds_alternative<std::string>(parse_presence_query(q));
}

TEST(presence_query, repeated_users_in_order_without_duplicates) {
    EXPECT_EQ(users_of("user=42"), (std::vector<std::string>{"42"}));
    EXPECT_EQ(users_of("user=b&user=a&user=b"), (std::vector<std::string>{"b", "a"}));
    EXPECT_EQ(users_of("x=1&user=a&cache=2"), (std::vector<std::string>{"a"}));
}

TEST(presence_query, user_ids_are_decoded) {
    EXPECT_EQ(users_of("user=caf%C3%A9&user=a+b&user=a%2Bb"),
              (std::vector<std::string>{"café", "a b", "a+b"}));
}

TEST(presence_query, refuses_what_is_not_a_user_id) {
    EXPECT_TRUE(refused(""));
    EXPECT_TRUE(refused("users=1"));
    EXPECT_TRUE(refused("user="));
    EXPECT_TRUE(refused("user"));
    EXPECT_TRUE(refused("user=%"));
    EXPECT_TRUE(refused("user=a%00"));
    EXPECT_TRUE(refused("user=a%0Ab"));
    EXPECT_TRUE(refused("user=%FF"));
    EXPECT_TRUE(refused("user=" + std::string(max_name_bytes + 1, 'a')));
    EXPECT_FALSE(refused("user=" + std::string(max_name_bytes, 'a')));
}

TEST(presence_query, at_most_max_presence_users) {
    std::string q;
    for (std::size_t i = 0; i < max_presence_users; ++i)
        q += (i ? "&user=" : "user=") + std::to_string(i);
    EXPECT_EQ(users_of(q).size(), max_presence_users);
    EXPECT_TRUE(refused(q + "&user=one-more"));
    // Repeats of one name do not count twice, but the query size is still bounded.
    EXPECT_EQ(users_of(q + "&user=0").size(), max_presence_users);
}

} // namespace
} // namespace ssegw
