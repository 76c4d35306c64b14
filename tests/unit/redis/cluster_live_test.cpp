// The slot map read from a real three-primary Redis Cluster (redis-server --cluster-enabled,
// slots assigned with CLUSTER ADDSLOTSRANGE, nodes joined with CLUSTER MEET) through the
// gateway's own command client: every key goes to the node that accepts it without MOVED.
#include "ssegw/redis/cluster_slots.hpp"
#include "ssegw/redis/command_client.hpp"

#include "redis_fixture.hpp"
#include "run_until.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>

namespace ssegw {
namespace {

using namespace std::chrono_literals;
using test::redis_server;
using test::run_command;
using test::run_until;

std::vector<std::string> cluster_args(const std::filesystem::path& dir, int n) {
    return {"--cluster-enabled",      "yes",
            "--cluster-config-file",  (dir / ("nodes-" + std::to_string(n) + ".conf")).string(),
            "--cluster-node-timeout", "2000"};
}

class cluster_live : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("ssegw-cluster-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
        for (int i = 0; i < 3; ++i)
            nodes_.push_back(std::make_unique<redis_server>(cluster_args(dir_, i)));
        const std::pair<int, int> ranges[] = {{0, 5460}, {5461, 10922}, {10923, 16383}};
        for (int i = 0; i < 3; ++i)
            run_command(nodes_[i]->port(),
                        {"CLUSTER", "ADDSLOTSRANGE", std::to_string(ranges[i].first),
                         std::to_string(ranges[i].second)});
        for (int i = 1; i < 3; ++i)
            run_command(nodes_[0]->port(),
                        {"CLUSTER", "MEET", "127.0.0.1", std::to_string(nodes_[i]->port())});
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        while (!all_ok()) {
            ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "cluster never formed";
            std::this_thread::sleep_for(50ms); // polling interval only
        }
    }

    void TearDown() override {
        nodes_.clear();
        std::filesystem::remove_all(dir_);
    }

    bool all_ok() {
        for (auto& n : nodes_) {
            const auto info = test::try_command(n->port(), {"CLUSTER", "INFO"});
            if (!info || info->str.find("cluster_state:ok") == std::string::npos ||
                info->str.find("cluster_known_nodes:3") == std::string::npos)
                return false;
        }
        return true;
    }

    std::filesystem::path dir_;
    std::vector<std::unique_ptr<redis_server>> nodes_;
    boost::asio::io_context io_;
};

TEST_F(cluster_live, slot_map_sends_each_key_to_the_node_that_owns_it) {
    command_client client(io_, nodes_[1]->endpoint(), 20ms, 200ms, 1s);
    client.start();
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    std::optional<reply> shards;
    client.execute({"CLUSTER", "SHARDS"},
                   [&](std::optional<reply> r, std::string) { shards = std::move(r); });
    ASSERT_TRUE(run_until(io_, [&] { return shards.has_value(); }));
    std::string why;
    const auto map = cluster_slot_map::from_shards_reply(*shards, why);
    ASSERT_TRUE(map) << why;
    ASSERT_EQ(map->shards().size(), 3u);

    for (const std::string key : {"sse:{user:42}", "sse:{user:7}", "sse:{broadcast}",
                                  "sse:{topic:news}", "foo", "123456789"}) {
        const auto* owner = map->shards()[map->shard_of_key(key)].primary();
        ASSERT_NE(owner, nullptr);
        const auto slot = run_command(owner->port, {"CLUSTER", "KEYSLOT", key});
        EXPECT_EQ(slot.integer, key_slot(key)) << key;
        const auto set = run_command(owner->port, {"SET", key, "x"});
        EXPECT_EQ(set.str, "OK") << key << " on " << owner->port << ": " << set.str;
        for (const auto& n : nodes_) {
            if (n->port() == owner->port) continue;
            const auto moved = run_command(n->port(), {"GET", key});
            EXPECT_EQ(moved.str.rfind("MOVED " + std::to_string(key_slot(key)) + " ", 0), 0u)
                << key << " on " << n->port() << ": " << moved.str;
        }
    }
}

} // namespace
} // namespace ssegw
