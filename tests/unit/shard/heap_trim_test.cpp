#include "ssegw/shard/heap_trim.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

void handshakes(heap_trim& t, std::uint64_t n) {
    for (std::uint64_t i = 0; i < n; ++i) t.handshake_done();
}

TEST(heap_trim, trims_once_a_wave_is_over_not_during_it) {
    heap_trim t;
    std::uint32_t tick = 0;
    // A wave: many handshakes every tick, no trim while it lasts.
    for (int i = 0; i < 5; ++i) {
        handshakes(t, 1000);
        EXPECT_FALSE(t.on_tick(++tick));
    }
    // The first quiet tick trims; the next ones have nothing new.
    EXPECT_TRUE(t.on_tick(++tick));
    EXPECT_FALSE(t.on_tick(++tick));
    EXPECT_EQ(t.trims(), 1u);
}

TEST(heap_trim, a_trickle_never_trims_and_trims_are_spaced) {
    heap_trim t;
    std::uint32_t tick = 0;
    for (int i = 0; i < 100; ++i) {
        handshakes(t, 1); // 100 in all: under a wave
        EXPECT_FALSE(t.on_tick(++tick));
    }
    handshakes(t, heap_trim::min_wave);
    EXPECT_FALSE(t.on_tick(++tick)); // that tick was busy
    EXPECT_TRUE(t.on_tick(++tick));
    // A second wave right after: waits for the interval.
    handshakes(t, heap_trim::min_wave);
    EXPECT_FALSE(t.on_tick(++tick));
    std::uint32_t waited = 0;
    while (!t.on_tick(++tick) && waited < 100) ++waited;
    EXPECT_EQ(t.trims(), 2u);
    EXPECT_LE(waited + 2, heap_trim::min_interval_ticks + 1);
}

} // namespace
} // namespace ssegw
