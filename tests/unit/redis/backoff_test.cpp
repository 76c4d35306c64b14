#include "ssegw/redis/backoff.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

using std::chrono::milliseconds;

TEST(backoff, first_delay_is_min) {
    backoff b(milliseconds(100), milliseconds(5000));
    EXPECT_EQ(b.next(), milliseconds(100)); // ceiling starts at min
}

TEST(backoff, delays_stay_within_growing_ceiling) {
    backoff b(milliseconds(100), milliseconds(5000));
    milliseconds expected_ceiling(100);
    for (int i = 0; i < 20; ++i) {
        EXPECT_EQ(b.ceiling(), expected_ceiling);
        auto d = b.next();
        EXPECT_GE(d, milliseconds(100));
        EXPECT_LE(d, expected_ceiling);
        expected_ceiling = std::min(expected_ceiling * 2, milliseconds(5000));
    }
    EXPECT_EQ(b.ceiling(), milliseconds(5000));
}

TEST(backoff, is_capped_and_jittered) {
    backoff b(milliseconds(10), milliseconds(1000));
    for (int i = 0; i < 10; ++i) b.next();
    milliseconds lo(1000), hi(0);
    for (int i = 0; i < 500; ++i) {
        auto d = b.next();
        ASSERT_LE(d, milliseconds(1000));
        ASSERT_GE(d, milliseconds(10));
        lo = std::min(lo, d);
        hi = std::max(hi, d);
    }
    // Full jitter: the spread covers most of [min, max], not a narrow band near the cap.
    EXPECT_LT(lo, milliseconds(300));
    EXPECT_GT(hi, milliseconds(700));
}

TEST(backoff, reset_returns_to_min) {
    backoff b(milliseconds(50), milliseconds(800));
    for (int i = 0; i < 10; ++i) b.next();
    EXPECT_EQ(b.ceiling(), milliseconds(800));
    b.reset();
    EXPECT_EQ(b.ceiling(), milliseconds(50));
    EXPECT_EQ(b.next(), milliseconds(50));
}

TEST(backoff, clamps_silly_arguments) {
    backoff zero(milliseconds(0), milliseconds(0));
    EXPECT_EQ(zero.next(), milliseconds(1)); // never a zero delay: no busy loop
    backoff inverted(milliseconds(500), milliseconds(10));
    EXPECT_EQ(inverted.next(), milliseconds(500));
    EXPECT_EQ(inverted.next(), milliseconds(500));
}

TEST(backoff, huge_max_does_not_overflow) {
    backoff b(milliseconds(1), milliseconds(std::chrono::hours(24 * 365)));
    for (int i = 0; i < 200; ++i) {
        auto d = b.next();
        ASSERT_GE(d.count(), 1);
        ASSERT_LE(d, milliseconds(std::chrono::hours(24 * 365)));
    }
}

} // namespace
} // namespace ssegw
