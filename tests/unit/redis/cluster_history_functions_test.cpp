#include "ssegw/redis/cluster_history_functions.hpp"

#include <gtest/gtest.h>

#include "redis_fixture.hpp"

namespace ssegw {
namespace {

reply str(std::string s) {
    reply r;
    r.type = reply::kind::string;
    r.str = std::move(s);
    return r;
}

reply integer(long long v) {
    reply r;
    r.type = reply::kind::integer;
    r.integer = v;
    return r;
}

TEST(cluster_history_functions, commands_name_the_channel_key_and_its_loss_notes) {
    EXPECT_EQ(cluster_publish_command("sse:", "user:42", "p"),
              (std::vector<std::string>{"FCALL", "sse_publish", "1", "sse:{user:42}", "p"}));
    EXPECT_EQ(cluster_history_command("sse:", "user:42", std::nullopt),
              (std::vector<std::string>{"FCALL", "sse_history", "2", "sse:{user:42}",
                                        "sse:{user:42}:lost"}));
    EXPECT_EQ(cluster_history_command("sse:", "broadcast", channel_position{17, 3}, true),
              (std::vector<std::string>{"FCALL", "sse_history", "2", "sse:{broadcast}",
                                        "sse:{broadcast}:lost", "17", "3", "note"}));
    const auto src = cluster_history_library_source("sse:", 1000, 86400);
    EXPECT_EQ(src.rfind("#!lua name=ssegw_cluster_v1\n", 0), 0u);
    EXPECT_NE(src.find("local MAXLEN = 1000"), std::string::npos);
}

TEST(cluster_history_functions, parses_tip_truncation_and_entries) {
    reply r;
    r.type = reply::kind::array;
    r.elements = {str("1764594933123"),
                  str("7"),
                  integer(1),
                  str("1764594933123"),
                  str("6"),
                  str("1764594933"),
                  str("{\"data\":1}"),
                  str("1764594933123"),
                  str("7"),
                  str("1764594934"),
                  str("x")};
    const auto h = parse_cluster_history_reply(r, "user:1");
    ASSERT_TRUE(h.ok) << h.error;
    EXPECT_EQ(h.tip, (channel_position{1764594933123, 7}));
    EXPECT_TRUE(h.truncated);
    ASSERT_EQ(h.entries.size(), 2u);
    EXPECT_EQ(h.entries[1].at, (channel_position{1764594933123, 7}));
    EXPECT_EQ(h.entries[1].channel, "user:1");
    EXPECT_EQ(h.entries[1].position.time, 1764594934);
    EXPECT_EQ(h.entries[0].payload, "{\"data\":1}");
}

TEST(cluster_history_functions, refuses_malformed_replies_clearly) {
    reply err;
    err.type = reply::kind::error;
    err.str = "ERR sse_history: the key must be sse:{<channel>}";
    EXPECT_EQ(parse_cluster_history_reply(err, "user:1").error, err.str);
    reply short_list;
    short_list.type = reply::kind::array;
    short_list.elements = {str("1"), str("2")};
    EXPECT_FALSE(parse_cluster_history_reply(short_list, "user:1").ok);
    reply bad_entry;
    bad_entry.type = reply::kind::array;
    bad_entry.elements = {str("1"), str("2"), integer(0), str("x"), str("2"), str("3"), str("p")};
    EXPECT_FALSE(parse_cluster_history_reply(bad_entry, "user:1").ok);
    reply odd;
    odd.type = reply::kind::array;
    odd.elements = {str("1"), str("2"), integer(0), str("1")};
    EXPECT_FALSE(parse_cluster_history_reply(odd, "user:1").ok);
}

TEST(cluster_history_functions, reads_the_published_entry_id) {
    EXPECT_EQ(parse_cluster_publish_reply(str("1764594933123-42")),
              (channel_position{1764594933123, 42}));
    EXPECT_EQ(parse_cluster_publish_reply(str("0-0")), (channel_position{0, 0}));
    for (const char* junk : {"", "-", "1-", "-1", "1764594933123", "1-2-3", "a-1", "1-1 ",
                             "18446744073709551616-1"})
        EXPECT_FALSE(parse_cluster_publish_reply(str(junk))) << junk;
    EXPECT_FALSE(parse_cluster_publish_reply(integer(1)));
}

// The library on a real (standalone) redis-server: a channel's history as a failover leaves
// it, written by hand. Epoch 100 reached seq 5 on the old primary and gateways routed all five;
// the promoted replica had only 1..3 and opened epoch 200 after them (pe 100, ps 3).
TEST(cluster_history_functions, a_failover_inside_a_replayed_range_is_reported) {
    test::redis_server server;
    const auto port = server.port();
    ASSERT_EQ(test::run_command(port, {"FUNCTION", "LOAD",
                                       cluster_history_library_source("sse:", 1000, 86400)})
                  .type,
              reply::kind::string);
    const std::string key = "sse:{user:1}";
    for (int s = 1; s <= 3; ++s)
        test::run_command(port, {"XADD", key, "100-" + std::to_string(s), "w", "old", "t", "1",
                                 "p", "e" + std::to_string(s)});
    test::run_command(port, {"XADD", key, "200-1", "w", "new", "t", "2", "p", "n1", "pe", "100",
                             "ps", "3"});
    test::run_command(port, {"XADD", key, "200-2", "w", "new", "t", "2", "p", "n2"});
    const auto read = [&](std::uint64_t seq, bool note = false) {
        return parse_cluster_history_reply(
            test::run_command(port, cluster_history_command("sse:", "user:1",
                                                            channel_position{100, seq}, note)),
            "user:1");
    };
    const auto payloads = [](const channel_history& h) {
        std::vector<std::string> out;
        for (const auto& e : h.entries) out.push_back(e.payload);
        return out;
    };

    // Until a gateway says it routed 4 and 5, nothing is known to be missing.
    EXPECT_FALSE(read(1).truncated);
    // A gateway catching up from what it routed (5): it has 4 and 5, and notes them.
    auto h = read(5, true);
    ASSERT_TRUE(h.ok) << h.error;
    EXPECT_FALSE(h.truncated);
    EXPECT_EQ(payloads(h), (std::vector<std::string>{"n1", "n2"}));
    // A client at 3 or 4: the first entry after it opens the epoch that lost 4 and 5.
    EXPECT_TRUE(read(3).truncated);
    EXPECT_TRUE(read(4).truncated);
    // A client at 1: the range crosses that epoch start further in; the replay would step over
    // 4 and 5 without a word (it did, before the check covered every epoch start in a range).
    h = read(1);
    EXPECT_TRUE(h.truncated);
    EXPECT_EQ(payloads(h), (std::vector<std::string>{"e2", "e3", "n1", "n2"}));
    EXPECT_FALSE(read(5).truncated) << "a client that got 5 lost nothing";

    // The gateway may catch up before the promoted replica writes anything: the stream ends at
    // 3 and the new epoch does not exist yet. Its note must still count once the epoch starts.
    const std::string key2 = "sse:{user:2}";
    for (int s = 1; s <= 3; ++s)
        test::run_command(port, {"XADD", key2, "100-" + std::to_string(s), "w", "old", "t", "1",
                                 "p", "e" + std::to_string(s)});
    const auto read2 = [&](std::uint64_t seq, bool note = false) {
        return parse_cluster_history_reply(
            test::run_command(port, cluster_history_command("sse:", "user:2",
                                                            channel_position{100, seq}, note)),
            "user:2");
    };
    h = read2(5, true);
    ASSERT_TRUE(h.ok) << h.error;
    EXPECT_FALSE(h.truncated) << "the gateway has what it routed";
    EXPECT_TRUE(h.entries.empty());
    test::run_command(port, {"XADD", key2, "200-1", "w", "new", "t", "2", "p", "n1", "pe", "100",
                             "ps", "3"});
    EXPECT_TRUE(read2(1).truncated);
    EXPECT_TRUE(read2(3).truncated);
    EXPECT_FALSE(read2(5).truncated);
}

} // namespace
} // namespace ssegw
