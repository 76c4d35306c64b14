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
    const auto c = cluster_cursor::parse(p.format());
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
    const auto c = cluster_cursor::parse(p.format());
    ASSERT_TRUE(c) << "a cursor with one component per hash: " << p.format();
    EXPECT_EQ(c->components.size(), 2u);
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
