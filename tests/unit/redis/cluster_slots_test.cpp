#include "ssegw/redis/cluster_slots.hpp"

#include <gtest/gtest.h>

namespace ssegw {
namespace {

// Expected values are what Redis 7.0.15 answers to CLUSTER KEYSLOT for the same names.
TEST(key_slot, matches_redis) {
    EXPECT_EQ(key_slot("foo"), 12182);
    EXPECT_EQ(key_slot("123456789"), 12739);
    EXPECT_EQ(key_slot("a"), 15495);
    // A hash tag: a stream's key and its bare channel name share a slot.
    EXPECT_EQ(key_slot("sse:{user:42}"), 15880);
    EXPECT_EQ(key_slot("user:42"), 15880);
    // Only the first tag counts; an empty one does not, so the whole name is hashed.
    EXPECT_EQ(key_slot("x{a}{b}"), key_slot("a"));
    EXPECT_EQ(key_slot("a{}b"), 13694);
    EXPECT_EQ(key_slot("{}"), 15257);
}

reply str(std::string s) {
    reply r;
    r.type = reply::kind::string;
    r.str = std::move(s);
    return r;
}

reply num(long long n) {
    reply r;
    r.type = reply::kind::integer;
    r.integer = n;
    return r;
}

reply list(std::vector<reply> elements) {
    reply r;
    r.type = reply::kind::array;
    r.elements = std::move(elements);
    return r;
}

reply node(const std::string& id, int port, const char* role, const char* health = "online") {
    return list({str("id"), str(id), str("port"), num(port), str("ip"), str("127.0.0.1"),
                 str("endpoint"), str("127.0.0.1"), str("role"), str(role),
                 str("replication-offset"), num(0), str("health"), str(health)});
}

reply shard(std::vector<reply> slots, std::vector<reply> nodes) {
    return list({str("slots"), list(std::move(slots)), str("nodes"), list(std::move(nodes))});
}

// The shape CLUSTER SHARDS has on Redis 7.0.15 (RESP2), three primaries with a replica each.
reply three_shards(const char* third_primary_health = "online") {
    return list({
        shard({num(10923), num(16383)},
              {node("c", 7003, "master", third_primary_health), node("f", 7006, "replica")}),
        shard({num(0), num(5460)}, {node("a", 7001, "master"), node("d", 7004, "replica")}),
        shard({num(5461), num(10922)}, {node("b", 7002, "master"), node("e", 7005, "replica")}),
    });
}

TEST(cluster_slot_map, routes_every_slot_to_its_primary) {
    std::string why;
    const auto map = cluster_slot_map::from_shards_reply(three_shards(), why);
    ASSERT_TRUE(map) << why;
    ASSERT_EQ(map->shards().size(), 3u);
    const auto& owner = map->shards()[map->shard_of_slot(0)];
    EXPECT_EQ(owner.primary()->port, 7001);
    EXPECT_EQ(map->shards()[map->shard_of_slot(16383)].primary()->port, 7003);
    EXPECT_EQ(map->shards()[map->shard_of_slot(5461)].primary()->id, "b");
    EXPECT_EQ(map->shards()[map->shard_of_key("sse:{user:42}")].primary()->port, 7003);
    EXPECT_EQ(map->shards()[0].nodes[1].primary, false);
}

TEST(cluster_slot_map, refuses_a_map_with_a_failed_primary_or_a_hole) {
    std::string why;
    EXPECT_FALSE(cluster_slot_map::from_shards_reply(three_shards("failed"), why));
    EXPECT_NE(why.find("no online primary"), std::string::npos) << why;

    auto holed = three_shards();
    holed.elements[1].elements[1] = list({num(1), num(5460)}); // slot 0 unowned
    EXPECT_FALSE(cluster_slot_map::from_shards_reply(holed, why));
    EXPECT_EQ(why, "CLUSTER SHARDS: slot 0 has no owner");

    reply error;
    error.type = reply::kind::error;
    error.str = "ERR This instance has cluster support disabled";
    EXPECT_FALSE(cluster_slot_map::from_shards_reply(error, why));
    EXPECT_EQ(why, error.str);
}

TEST(cluster_slot_map, skips_shards_without_slots_and_refuses_junk) {
    auto r = three_shards();
    r.elements.push_back(shard({}, {node("g", 7007, "master")}));
    std::string why;
    const auto map = cluster_slot_map::from_shards_reply(r, why);
    ASSERT_TRUE(map) << why;
    EXPECT_EQ(map->shards().size(), 3u);

    auto bad = three_shards();
    bad.elements[0].elements[1] = list({num(16000), num(16384)});
    EXPECT_FALSE(cluster_slot_map::from_shards_reply(bad, why));
    EXPECT_EQ(why, "CLUSTER SHARDS: a bad slot range");
    EXPECT_FALSE(cluster_slot_map::from_shards_reply(list({str("junk")}), why));
}

} // namespace
} // namespace ssegw
