#include "ssegw/redis/cluster_history_functions.hpp"

#include <gtest/gtest.h>

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

} // namespace
} // namespace ssegw
