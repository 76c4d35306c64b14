// The history Redis Functions against a real redis-server: publish appends + publishes
// atomically with a position; sse_history replays exactly what follows a position and flags
// trimmed history. Also the pure reply decoding and chunk merging.

#include "ssegw/redis/history_functions.hpp"

#include <gtest/gtest.h>

#include "redis_fixture.hpp"

namespace ssegw {
namespace {

using test::redis_server;
using test::run_command;

class history_functions : public ::testing::Test {
protected:
    void load(std::uint32_t max_len, std::uint32_t ttl = 3600) {
        auto r = run_command(redis_.port(), {"FUNCTION", "LOAD", "REPLACE",
                                             history_library_source("sse:", max_len, ttl)});
        ASSERT_EQ(r.type, reply::kind::string) << r.str;
        ASSERT_EQ(r.str, history_library_name);
    }

    stream_position publish(const std::string& channel, const std::string& payload) {
        auto r = run_command(redis_.port(), publish_command("sse:", channel, payload));
        EXPECT_EQ(r.type, reply::kind::string) << r.str;
        auto pos = stream_position::parse(r.str);
        EXPECT_TRUE(pos) << r.str;
        return pos.value_or(stream_position{});
    }

    history_read read(const std::vector<std::string>& channels,
                      const std::optional<stream_position>& from) {
        return parse_history_reply(
            run_command(redis_.port(), history_command("sse:", channels, from)), channels);
    }

    redis_server redis_;
};

TEST_F(history_functions, publish_returns_increasing_positions_across_channels) {
    load(100);
    auto a = publish("user:42", R"({"data":1})");
    auto b = publish("topic:news", R"({"data":2})");
    auto c = publish("broadcast", "plain");
    EXPECT_EQ(a.epoch, b.epoch);
    EXPECT_EQ(b.seq, a.seq + 1);
    EXPECT_EQ(c.seq, b.seq + 1);
    auto bad = run_command(redis_.port(), publish_command("sse:", "nonsense", "x"));
    EXPECT_EQ(bad.type, reply::kind::error);
}

TEST_F(history_functions, bare_and_prefixed_keys_name_the_same_channel) {
    load(100);
    auto a = publish("user:42", "bare key");
    auto r =
        run_command(redis_.port(), {"FCALL", "sse_publish", "1", "sse:{user:42}", "braced key"});
    ASSERT_EQ(r.type, reply::kind::string) << r.str;
    auto b = stream_position::parse(r.str).value();
    const std::vector<std::string> channels{"user:42"};
    auto h = read(channels, a);
    ASSERT_EQ(h.entries.size(), 1u);
    EXPECT_EQ(h.entries[0].position.seq, b.seq);
    EXPECT_EQ(h.entries[0].payload, "braced key");
    // A channel whose name holds braces survives the wrapping.
    auto c = publish("topic:a}b{c", "braces");
    EXPECT_EQ(read({"topic:a}b{c"}, b).entries.at(0).position.seq, c.seq);
    EXPECT_EQ(function_key("sse:", "user:42"), "sse:{user:42}");
}

TEST_F(history_functions, history_returns_only_events_after_the_position_merged_in_order) {
    load(100);
    auto p0 = publish("user:42", "u0");
    publish("topic:t", "t1");
    publish("user:7", "other user");
    publish("user:42", "u2");
    publish("broadcast", "b3");
    auto r = read({"user:42", "topic:t", "broadcast"}, p0);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_FALSE(r.unknown_position);
    EXPECT_TRUE(r.truncated.empty());
    ASSERT_EQ(r.entries.size(), 3u);
    EXPECT_EQ(r.entries[0].payload, "t1");
    EXPECT_EQ(r.entries[0].channel, "topic:t");
    EXPECT_EQ(r.entries[1].payload, "u2");
    EXPECT_EQ(r.entries[2].payload, "b3");
    EXPECT_EQ(r.tip.seq, p0.seq + 4);
    EXPECT_LT(r.entries[0].position.seq, r.entries[1].position.seq);
}

TEST_F(history_functions, fresh_read_gives_only_the_tip) {
    load(100);
    publish("user:1", "x");
    auto r = read({"user:1"}, std::nullopt);
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(r.entries.empty());
    EXPECT_EQ(r.tip.seq, 1u);
    EXPECT_FALSE(r.tip.epoch.empty());
}

TEST_F(history_functions, trimmed_history_is_flagged_and_the_rest_replayed) {
    load(3);
    auto p0 = publish("user:1", "e0");
    for (int i = 1; i < 10; ++i) {
        std::string payload = "e";
        payload += std::to_string(i);
        publish("user:1", payload);
    }
    auto r = read({"user:1"}, p0);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.truncated, std::vector<std::string>{"user:1"});
    ASSERT_EQ(r.entries.size(), 3u);
    EXPECT_EQ(r.entries[0].payload, "e7");
    EXPECT_EQ(r.entries[2].payload, "e9");
    // A position inside the kept window is not truncated.
    auto r2 = read({"user:1"}, r.entries[0].position);
    EXPECT_TRUE(r2.truncated.empty());
    EXPECT_EQ(r2.entries.size(), 2u);
}

TEST_F(history_functions, foreign_epoch_or_future_position_is_unknown) {
    load(100);
    publish("user:1", "x");
    auto r = read({"user:1"}, stream_position{"abc", 1, 1});
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(r.unknown_position);
    auto tip = read({"user:1"}, std::nullopt).tip;
    auto future = tip;
    future.seq += 100;
    EXPECT_TRUE(read({"user:1"}, future).unknown_position);
}

TEST_F(history_functions, a_new_writer_process_opens_a_new_epoch_that_continues_the_numbering) {
    // FUNCTION LOAD REPLACE resets the library's state as a promoted replica or a restarted
    // server has it: the next publish is the first of a new writer.
    load(100);
    const std::vector<std::string> ch{"user:1"};
    auto p1 = publish("user:1", "a");
    auto p2 = publish("user:1", "b");
    auto p3 = publish("user:1", "c");
    EXPECT_EQ(p3.epoch, p1.epoch);
    load(100);
    auto p4 = publish("user:1", "d");
    EXPECT_NE(p4.epoch, p1.epoch) << "a sequence number the old writer handed out is never reused";
    EXPECT_EQ(p4.seq, p3.seq + 1) << "the numbering continues";
    // Across the switch a position of the old epoch resumes exactly: nothing was lost.
    auto h = read(ch, p1);
    EXPECT_FALSE(h.unknown_position);
    EXPECT_FALSE(h.lost);
    ASSERT_EQ(h.entries.size(), 3u);
    EXPECT_EQ(h.entries[0].payload, "b");
    EXPECT_EQ(h.entries[2].payload, "d");
    EXPECT_EQ(h.entries[2].position.epoch, p4.epoch);

    // A gateway had routed the old epoch up to seq 6 (events a failover lost): positions before
    // them are told, and replay what exists.
    stream_position routed = p3;
    routed.seq = p3.seq + 3;
    auto noted = run_command(redis_.port(), note_epoch_command(routed, p4.epoch));
    EXPECT_EQ(noted.type, reply::kind::integer) << noted.str;
    h = read(ch, p2);
    EXPECT_TRUE(h.lost);
    ASSERT_EQ(h.entries.size(), 2u);
    EXPECT_EQ(h.entries[0].payload, "c");
    // A position inside the lost stretch (beyond what survived) replays everything after the
    // switch point, since those sequence numbers now name other events.
    stream_position beyond = p3;
    beyond.seq = p3.seq + 2;
    h = read(ch, beyond);
    EXPECT_TRUE(h.lost);
    EXPECT_FALSE(h.unknown_position);
    ASSERT_EQ(h.entries.size(), 1u);
    EXPECT_EQ(h.entries[0].payload, "d");
    // A position of the new epoch resumes as always.
    h = read(ch, p4);
    EXPECT_FALSE(h.lost);
    EXPECT_TRUE(h.entries.empty());
}

TEST_F(history_functions, expired_stream_with_an_old_position_is_flagged) {
    load(100, 1);
    auto p0 = publish("user:1", "a");
    auto aged = p0;
    aged.time -= 5; // older than the 1 s time-to-live
    run_command(redis_.port(), {"DEL", "sse:history:user:1"});
    auto r = read({"user:1"}, aged);
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.truncated, std::vector<std::string>{"user:1"});
    // The same position within the time-to-live: a missing stream means nothing was there.
    auto r2 = read({"user:1"}, p0);
    EXPECT_TRUE(r2.truncated.empty());
}

TEST_F(history_functions, missing_library_is_recognised) {
    auto r = run_command(redis_.port(), publish_command("sse:", "user:1", "x"));
    EXPECT_TRUE(is_missing_function_error(r)) << r.str;
}

TEST(history_reply, malformed_replies_fail_cleanly) {
    reply junk;
    junk.type = reply::kind::integer;
    EXPECT_FALSE(parse_history_reply(junk, {"user:1"}).ok);
    reply arr;
    arr.type = reply::kind::array;
    arr.elements.resize(4);
    EXPECT_FALSE(parse_history_reply(arr, {"user:1"}).ok);
}

history_entry entry(std::string channel, std::uint64_t seq, std::string payload) {
    history_entry e;
    e.channel = std::move(channel);
    e.position.epoch = "e";
    e.position.seq = seq;
    e.position.time = 1;
    e.payload = std::move(payload);
    return e;
}

TEST(history_merge, chunks_merge_by_sequence_and_stop_at_the_earliest_tip) {
    history_read a, b;
    a.ok = b.ok = true;
    a.tip = entry("", 10, "").position;
    b.tip = entry("", 12, "").position;
    a.entries.push_back(entry("user:1", 3, "a3"));
    a.entries.push_back(entry("user:1", 9, "a9"));
    b.entries.push_back(entry("topic:t", 5, "b5"));
    b.entries.push_back(entry("topic:t", 11, "b11"));
    b.truncated = {"topic:t"};
    auto m = merge_history_reads({a, b});
    ASSERT_TRUE(m.ok);
    EXPECT_EQ(m.tip.seq, 10u);
    ASSERT_EQ(m.entries.size(), 3u);
    EXPECT_EQ(m.entries[0].payload, "a3");
    EXPECT_EQ(m.entries[1].payload, "b5");
    EXPECT_EQ(m.entries[2].payload, "a9");
    EXPECT_EQ(m.truncated, std::vector<std::string>{"topic:t"});
}

} // namespace
} // namespace ssegw
