#include "ssegw/shard/composite_position.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>

#include "ssegw/sse/frame_body.hpp"

namespace ssegw {
namespace {

TEST(CompositePosition, AdvancesPerChannelAndFormatsACursor) {
    const std::vector<std::string> channels = {"user:42", "broadcast", "topic:news"};
    composite_position p(channels, {{100, 3}, {0, 0}, {200, 7}});
    EXPECT_FALSE(p.advance(0, {100, 3})) << "what the client has";
    EXPECT_FALSE(p.advance(0, {99, 9})) << "an older epoch";
    EXPECT_TRUE(p.advance(0, {100, 4}));
    EXPECT_TRUE(p.advance(1, {150, 1}));
    EXPECT_TRUE(p.advance(2, {300, 1})) << "a newer epoch";
    EXPECT_FALSE(p.advance(3, {1, 1})) << "not a channel of the session";
    const auto c = cluster_cursor::parse(p.id());
    ASSERT_TRUE(c);
    ASSERT_EQ(c->components.size(), 3u);
    EXPECT_EQ(*c->find(cursor_hash("user:42")), (channel_position{100, 4}));
    EXPECT_EQ(*c->find(cursor_hash("broadcast")), (channel_position{150, 1}));
    EXPECT_EQ(*c->find(cursor_hash("topic:news")), (channel_position{300, 1}));
}

TEST(CompositePosition, LeavesOutAChannelWhoseHashCollides) {
    // Find two names with one 20-bit hash (birthday bound: a few thousand tries).
    std::string a, b;
    std::vector<std::pair<std::uint32_t, std::string>> seen;
    for (int i = 0; i < 20000 && b.empty(); ++i) {
        auto name = "topic:t" + std::to_string(i);
        const auto h = cursor_hash(name);
        for (const auto& [sh, sn] : seen)
            if (sh == h) {
                a = sn;
                b = name;
            }
        seen.emplace_back(h, name);
    }
    ASSERT_FALSE(b.empty());
    composite_position p({"user:1", a, b}, {{1, 1}, {2, 2}, {3, 3}});
    const auto c = cluster_cursor::parse(p.id());
    ASSERT_TRUE(c) << "a cursor with one component per hash: " << p.id();
    EXPECT_EQ(c->components.size(), 2u);
}

/// The id as cluster_cursor formats it from scratch: what the kept text must always equal.
std::string formatted(const composite_position& p, const std::vector<std::string>& channels) {
    cluster_cursor c;
    for (std::size_t i = 0; i < channels.size(); ++i) {
        const auto h = cursor_hash(channels[i]);
        if (!c.find(h) && c.components.size() < cluster_cursor::max_components)
            c.components.push_back({h, p.at(i)});
    }
    return c.format();
}

TEST(CompositePosition, KeptIdEqualsAFreshlyFormattedOneAfterEveryAdvance) {
    // Sequences gaining digits (36 -> "10"), new epochs resetting them to 1 (shorter text),
    // in the first, a middle and the last component: the text around each one moves.
    std::vector<std::string> channels = {"user:42", "broadcast"};
    for (int i = 0; i < 8; ++i) channels.push_back("topic:t" + std::to_string(i));
    std::vector<channel_position> start(channels.size(), {1764594933123, 30});
    start[3] = {0, 0};
    composite_position p(channels, start);
    EXPECT_EQ(p.id(), formatted(p, channels));
    std::uint64_t rng = 12345;
    for (int step = 0; step < 5000; ++step) {
        rng = rng * 6364136223846793005ull + 1442695040888963407ull;
        const auto i = static_cast<std::size_t>((rng >> 33) % channels.size());
        auto at = p.at(i);
        if ((rng >> 20) % 50 == 0)
            at = {at.epoch + 1 + (rng >> 40) % 100000, 1}; // a new epoch
        else
            at.seq += 1 + (rng >> 45) % 40;
        ASSERT_TRUE(p.advance(i, at));
        ASSERT_EQ(p.id(), formatted(p, channels)) << "step " << step;
        ASSERT_EQ(*p.id_tail(), "id: " + std::string(p.id()) + "\n\n");
    }
    EXPECT_FALSE(p.advance(0, p.at(0))) << "no move, no change";
    EXPECT_EQ(p.id(), formatted(p, channels));
}

TEST(CompositePosition, NamesAtMostWhatTheCursorParserTakesBack) {
    std::vector<std::string> channels;
    for (int i = 0; i < 70; ++i) channels.push_back("topic:t" + std::to_string(i));
    composite_position p(channels, std::vector<channel_position>(channels.size(), {5, 7}));
    for (std::size_t i = 0; i < channels.size(); ++i) p.advance(i, {5, 36u * 36u});
    const auto c = cluster_cursor::parse(p.id());
    ASSERT_TRUE(c) << p.id();
    EXPECT_EQ(c->components.size(), cluster_cursor::max_components);
    EXPECT_EQ(p.id(), formatted(p, channels));
}

// What a per-session id costs each delivery of a history event in cluster mode: formatting the
// session's cursor and allocating its tail, on top of the shared body. Printed, not asserted;
// docs/architecture.md quotes a run.
TEST(CompositePosition, MeasurePerDeliveryIdCost) {
    const std::vector<std::string> three = {"user:42", "broadcast", "topic:news"};
    std::vector<std::string> many = {"user:42", "broadcast"};
    for (int i = 0; i < 32; ++i) many.push_back("topic:t" + std::to_string(i));
    for (const std::vector<std::string>* channels :
         {&three, static_cast<const std::vector<std::string>*>(&many)}) {
        std::vector<channel_position> start(channels->size(), {1764594933123, 1000});
        composite_position p(*channels, start);
        constexpr int deliveries = 100000;
        std::size_t bytes = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < deliveries; ++i) {
            p.advance(1, {1764594933123, 1001u + static_cast<std::uint64_t>(i)});
            auto tail = p.id_tail();
            bytes += tail->size();
        }
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - t0)
                            .count() /
                        double(deliveries);
        std::printf("%zu channels: id tail %.0f ns and %zu bytes per delivery\n", channels->size(),
                    ns, bytes / deliveries);
        EXPECT_GT(bytes, 0u);
    }
}

} // namespace
} // namespace ssegw
