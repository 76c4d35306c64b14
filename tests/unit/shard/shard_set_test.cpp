// The shard set's contract, with its loops driven by the test on this thread: invoke_on runs in
// place on the shard's own thread (how shard 0's batches are delivered) and is posted otherwise;
// invoke_on_all is always posted; least_loaded picks the fewest connections, the first of equals.

#include "ssegw/shard/shard_set.hpp"

#include <vector>

#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

namespace ssegw {
namespace {

TEST(shard_set, invoke_on_runs_in_place_only_on_the_shards_own_loop) {
    gateway_config cfg;
    shard_set shards(2, cfg);
    std::vector<int> order;
    shards.invoke_on(0, [&] { order.push_back(1); }); // not on shard 0's loop: posted
    EXPECT_TRUE(order.empty());
    boost::asio::post(shards.control(), [&] {
        shards.invoke_on(0, [&] { order.push_back(2); }); // on it: right here
        order.push_back(3);
        shards.invoke_on(1, [&] { order.push_back(4); }); // another shard: posted there
    });
    shards.control().poll();
    EXPECT_EQ(order, (std::vector<int>{1, 2, 3}));
    shards[1].context().poll();
    EXPECT_EQ(order.back(), 4);
}

TEST(shard_set, invoke_on_all_is_posted_to_every_shard_including_the_callers) {
    gateway_config cfg;
    shard_set shards(3, cfg);
    std::vector<unsigned> seen;
    boost::asio::post(shards.control(), [&] {
        shards.invoke_on_all([&](shard& s) { seen.push_back(s.id()); });
        EXPECT_TRUE(seen.empty());
    });
    for (auto* s : shards) s->context().poll();
    EXPECT_EQ(seen, (std::vector<unsigned>{0, 1, 2}));
}

TEST(shard_set, least_loaded_prefers_fewest_connections_then_lowest_id) {
    gateway_config cfg;
    shard_set shards(3, cfg);
    EXPECT_EQ(shards.least_loaded().id(), 0u);
    shards[0].reserve_slot();
    EXPECT_EQ(shards.least_loaded().id(), 1u);
    shards[1].reserve_slot();
    shards[2].reserve_slot();
    shards[2].handshake_failed(close_reason::handshake_failed);
    EXPECT_EQ(shards.least_loaded().id(), 2u);
    EXPECT_EQ(shards.connections_total().load(), 2u);
    shards[0].handshake_failed(close_reason::handshake_failed);
    shards[1].handshake_failed(close_reason::handshake_failed);
}

} // namespace
} // namespace ssegw
