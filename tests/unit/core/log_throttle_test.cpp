#include "ssegw/core/log_throttle.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

TEST(log_throttle, first_hit_logs_then_one_line_per_interval_with_the_count) {
    using namespace std::chrono_literals;
    log_throttle t(10s);
    const std::chrono::steady_clock::time_point t0{};
    EXPECT_EQ(t.hit(t0 + 1s), 1u);
    EXPECT_EQ(t.hit(t0 + 2s), 0u);
    EXPECT_EQ(t.hit(t0 + 5s), 0u);
    EXPECT_EQ(t.hit(t0 + 11s), 3u);
    EXPECT_EQ(t.hit(t0 + 12s), 0u);
    EXPECT_EQ(t.hit(t0 + 30s), 2u);
}

} // namespace
} // namespace ssegw
