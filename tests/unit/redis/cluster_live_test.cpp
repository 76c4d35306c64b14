// The slot map read from a real three-primary Redis Cluster (redis-server --cluster-enabled,
// slots assigned with CLUSTER ADDSLOTSRANGE, nodes joined with CLUSTER MEET) through the
// gateway's own command client: every key goes to the node that accepts it without MOVED.
#include "ssegw/redis/cluster_slots.hpp"
#include "ssegw/redis/command_client.hpp"
#include "ssegw/redis/subscriber.hpp"

#include "redis_fixture.hpp"
#include "run_until.hpp"

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <random>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

/// True when a socket can bind 127.0.0.1:port now.
bool bindable(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool ok = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    return ok;
}

/// A port whose cluster bus port (port + 10000) is free too, both below the kernel's ephemeral
/// range (32768+): a bus port from that range can be held at any moment by the local end of
/// another test's connection, and Redis then aborts ("Failed listening on port ... (cluster)").
std::uint16_t pick_cluster_port() {
    std::mt19937 rng(std::random_device{}());
    std::uniform_int_distribution<int> pick(20000, 22699);
    for (int attempt = 0; attempt < 1000; ++attempt) {
        const int port = pick(rng);
        if (bindable(port) && bindable(port + 10000)) return static_cast<std::uint16_t>(port);
    }
    throw std::runtime_error("no port with a free cluster bus port");
}

class cluster_live : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = std::filesystem::temp_directory_path() /
               ("ssegw-cluster-" + std::to_string(::getpid()) + "-" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        std::filesystem::create_directories(dir_);
        for (int i = 0; i < 3; ++i)
            nodes_.push_back(
                std::make_unique<redis_server>(cluster_args(dir_, i), pick_cluster_port()));
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

TEST_F(cluster_live, sharded_subscriber_receives_and_hears_moves) {
    std::string why;
    const auto map = cluster_slot_map::from_shards_reply(
        run_command(nodes_[0]->port(), {"CLUSTER", "SHARDS"}), why);
    ASSERT_TRUE(map) << why;
    const std::string mine = "sse:{user:42}";
    std::string elsewhere; // a channel another shard owns
    for (int i = 0; elsewhere.empty(); ++i) {
        const auto name = "sse:{user:" + std::to_string(i) + "}";
        if (map->shard_of_key(name) != map->shard_of_key(mine)) elsewhere = name;
    }
    const auto owner = map->shards()[map->shard_of_key(mine)].primary()->port;
    redis_server* owner_node = nullptr;
    for (auto& n : nodes_)
        if (n->port() == owner) owner_node = n.get();
    ASSERT_NE(owner_node, nullptr);

    std::vector<std::pair<std::string, std::string>> got, lost;
    subscriber_handlers h;
    h.on_message = [&](std::string_view ch, std::string_view p) { got.emplace_back(ch, p); };
    h.on_lost = [&](std::string_view ch, std::string_view why) { lost.emplace_back(ch, why); };
    subscriber_options opts;
    opts.sharded = true;
    opts.reconnect_min = 20ms;
    subscriber sub(io_, owner_node->endpoint(), opts, h);
    sub.subscribe(mine);
    sub.subscribe(elsewhere);
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.is_live(mine) && !lost.empty(); }));
    ASSERT_EQ(lost.size(), 1u);
    EXPECT_EQ(lost[0].first, elsewhere);
    EXPECT_EQ(lost[0].second.rfind("MOVED ", 0), 0u) << lost[0].second;
    EXPECT_FALSE(sub.is_live(elsewhere));
    EXPECT_TRUE(sub.connected()) << "an error reply answers one channel, not the link";

    EXPECT_EQ(run_command(owner, {"SPUBLISH", mine, "hello"}).integer, 1);
    ASSERT_TRUE(run_until(io_, [&] { return !got.empty(); }));
    EXPECT_EQ(got[0], (std::pair<std::string, std::string>{mine, "hello"}));

    // The slot moves to another node (empty, so SETSLOT NODE may hand it over): the server
    // drops the subscription itself.
    const auto slot = std::to_string(key_slot(mine));
    const auto& other = map->shards()[map->shard_of_key(elsewhere)].primary()->id;
    for (auto& n : nodes_) run_command(n->port(), {"CLUSTER", "SETSLOT", slot, "NODE", other});
    ASSERT_TRUE(run_until(io_, [&] { return lost.size() == 2; }));
    EXPECT_EQ(lost[1].first, mine);
    EXPECT_FALSE(sub.is_live(mine));
    EXPECT_TRUE(sub.connected());
}

} // namespace
} // namespace ssegw
