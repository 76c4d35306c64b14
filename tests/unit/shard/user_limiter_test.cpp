#include "ssegw/shard/user_limiter.hpp"

#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace ssegw {
namespace {

TEST(user_limiter, enforces_the_per_user_maximum) {
    user_limiter l(2);
    EXPECT_TRUE(l.try_acquire("42"));
    EXPECT_TRUE(l.try_acquire("42"));
    EXPECT_FALSE(l.try_acquire("42"));
    EXPECT_TRUE(l.try_acquire("43"));
    l.release("42");
    EXPECT_TRUE(l.try_acquire("42"));
    EXPECT_EQ(l.count("42"), 2u);
}

TEST(user_limiter, zero_means_unlimited_and_release_of_unknown_is_harmless) {
    user_limiter l(0);
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(l.try_acquire("u"));
    l.release("nobody");
    EXPECT_EQ(l.count("u"), 100u);
}

TEST(user_limiter, counts_stay_exact_across_threads) {
    user_limiter l(1000000);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 10000; ++i) {
                l.try_acquire("shared");
                if (i % 2) l.release("shared");
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(l.count("shared"), 4u * 5000u);
}

TEST(user_limiter, a_user_whose_last_slot_is_released_leaves_no_entry) {
    user_limiter l(0);
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(l.try_acquire("user-" + std::to_string(i)));
    EXPECT_EQ(l.users(), 1000u);
    EXPECT_EQ(l.count("user-7"), 1u);
    EXPECT_EQ(l.count("user-1000"), 0u);
    for (int i = 0; i < 1000; ++i) l.release("user-" + std::to_string(i));
    EXPECT_EQ(l.users(), 0u);
}

} // namespace
} // namespace ssegw
