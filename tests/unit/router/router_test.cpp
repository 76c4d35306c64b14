// The router's fan-out and its history bookkeeping, observed through its batch sink and broker:
// masks, subscription changes, once-only history routing, and catching up after the live feed
// was lost (crafted interleavings of held-back and replayed events).

#include "ssegw/router/router.hpp"

#include <gtest/gtest.h>

#include "ssegw/broker/broker.hpp"
#include "ssegw/core/envelope.hpp"
#include "ssegw/shard/batch_sink.hpp"

namespace ssegw {
namespace {

struct routed {
    unsigned shard;
    std::string channel;
    std::uint64_t seq;
    std::string bytes;
};

class router_test : public ::testing::Test, public batch_sink, public broker {
protected:
    // batch_sink: what the shards would receive.
    void deliver(unsigned shard, std::vector<routed_event_ptr> batch) override {
        batches.push_back({shard, batch.size()});
        for (const auto& ev : batch) got.push_back({shard, ev->channel, ev->seq, *ev->bytes});
    }
    // broker: only want() is the router's business.
    void want(const std::string& ch, bool wanted) override { changes.emplace_back(ch, wanted); }
    void start(event_sink&) override {}
    void stop() override {}
    void publish(std::string, std::string, bool, publish_done) override {}
    void send_control(std::string, std::int64_t, publish_done) override {}
    void read_history(std::vector<std::string>, std::optional<stream_position>,
                      history_done) override {}
    void when_subscribed(const std::vector<std::string>&, std::function<void()>) override {}
    bool ready() const override { return true; }
    broker_stats stats() const override { return {}; }
    void epoch_changed(const stream_position& routed, const std::string& next) override {
        epoch_changes.emplace_back(routed.format(), next);
    }
    std::vector<std::pair<std::string, std::string>> epoch_changes; // (routed up to, new epoch)

    router r{65536, *this, *this};
    std::vector<routed> got;
    std::vector<std::pair<unsigned, std::size_t>> batches; // (shard, events) per delivery
    /// What reached the shards once the pending batches are flushed, as the control loop does
    /// after each read burst.
    const std::vector<routed>& delivered() {
        r.flush();
        return got;
    }
    std::vector<std::pair<std::string, bool>> changes;

    static stream_position pos(std::uint64_t seq) { return {"e1", seq, 100}; }
    void history(std::string_view channel, std::uint64_t seq, std::string_view payload = "p") {
        const auto p = pos(seq);
        r.route_history(channel, p, p.format(), payload);
    }
    std::vector<std::uint64_t> seqs() {
        std::vector<std::uint64_t> s;
        for (const auto& o : delivered()) s.push_back(o.seq);
        return s;
    }
};

TEST_F(router_test, subscribes_on_first_shard_and_unsubscribes_after_last) {
    r.on_interest(0, "user:1", true);
    r.on_interest(1, "user:1", true);
    r.on_interest(0, "user:1", false);
    EXPECT_EQ(changes, (std::vector<std::pair<std::string, bool>>{{"user:1", true}}));
    r.on_interest(1, "user:1", false);
    EXPECT_EQ(changes.back(), (std::pair<std::string, bool>{"user:1", false}));
    EXPECT_EQ(r.channel_count(), 0u);
}

TEST_F(router_test, fans_out_once_per_holding_shard_with_one_shared_frame) {
    r.on_interest(0, "topic:t", true);
    r.on_interest(3, "topic:t", true);
    r.route("topic:t", R"({"event":"e","data":1})");
    ASSERT_EQ(delivered().size(), 2u);
    EXPECT_EQ(delivered()[0].shard, 0u);
    EXPECT_EQ(delivered()[1].shard, 3u);
    EXPECT_EQ(delivered()[0].bytes, "event: e\ndata: 1\n\n");
    r.route("topic:other", "x");
    r.route("nonsense", "x");
    EXPECT_EQ(delivered().size(), 2u);
    EXPECT_EQ(r.dropped(route_drop::no_local_subscriber), 1u);
    EXPECT_EQ(r.dropped(route_drop::bad_channel), 1u);
}

TEST_F(router_test, a_burst_goes_to_each_shard_as_one_batch_in_order) {
    r.on_interest(0, "user:1", true);
    r.on_interest(1, "user:2", true);
    r.on_interest(1, "topic:t", true);
    r.route("user:1", "a");
    r.route("user:2", "b");
    r.route("topic:t", "c");
    r.route("user:1", "d");
    EXPECT_TRUE(got.empty()); // nothing delivered before the flush
    ASSERT_EQ(delivered().size(), 4u);
    EXPECT_EQ(batches, (std::vector<std::pair<unsigned, std::size_t>>{{0, 2}, {1, 2}}));
    EXPECT_EQ(got[0].bytes, "data: a\n\n");
    EXPECT_EQ(got[1].bytes, "data: d\n\n");
    EXPECT_EQ(got[2].bytes, "data: b\n\n");
    EXPECT_EQ(got[3].bytes, "data: c\n\n");
    // The next event starts a new burst.
    r.route("user:2", "e");
    EXPECT_EQ(delivered().size(), 5u);
    EXPECT_EQ(batches.back(), (std::pair<unsigned, std::size_t>{1, 1}));
}

TEST_F(router_test, enveloped_messages_carry_their_position_as_id) {
    r.on_interest(0, "user:1", true);
    r.route("user:1", std::string("\x1e") + "e1.7.100\n" + R"({"data":"x"})");
    ASSERT_EQ(delivered().size(), 1u);
    EXPECT_EQ(delivered()[0].seq, 7u);
    EXPECT_EQ(delivered()[0].bytes, "id: e1.7.100\ndata: x\n\n");
    EXPECT_EQ(r.position()->seq, 7u);
}

TEST_F(router_test, history_events_are_routed_at_most_once) {
    r.on_interest(0, "user:1", true);
    history("user:1", 5);
    history("user:1", 5);
    history("user:1", 4);
    history("user:1", 6);
    EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{5, 6}));
    EXPECT_EQ(r.dropped(route_drop::duplicate), 2u);
}

TEST_F(router_test, catch_up_replays_the_gap_then_releases_newer_held_events) {
    r.on_interest(0, "user:1", true);
    r.on_interest(0, "topic:t", true);
    history("user:1", 10);
    r.begin_catch_up();
    // Live events arriving while the read is in flight: one the read will also return, newer
    // ones it will not.
    history("topic:t", 13);
    history("user:1", 15);
    EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{10}));
    history_read read;
    read.ok = true;
    read.tip = pos(13);
    for (auto [ch, seq] :
         {std::pair<const char*, int>{"user:1", 11}, {"topic:t", 12}, {"topic:t", 13}})
        read.entries.push_back({ch, pos(static_cast<std::uint64_t>(seq)), "p", {}});
    EXPECT_TRUE(r.finish_catch_up(read));
    EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{10, 11, 12, 13, 15}));
    EXPECT_EQ(r.caught_up_events(), 3u);
    EXPECT_EQ(r.position()->seq, 15u);
}

TEST_F(router_test, catch_up_moves_the_position_to_the_tip_even_without_entries) {
    r.on_interest(0, "user:1", true);
    history("user:1", 3);
    r.begin_catch_up();
    history_read read;
    read.ok = true;
    read.tip = pos(40);
    EXPECT_TRUE(r.finish_catch_up(read));
    EXPECT_EQ(r.position()->seq, 40u);
    history("user:1", 39); // older than the tip: was in the (empty) read's range
    history("user:1", 41);
    EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{3, 41}));
}

TEST_F(router_test, live_only_events_pass_through_catch_up_and_mark_own_ids) {
    r.on_interest(0, "user:1", true);
    r.begin_catch_up();
    r.route("user:1", R"({"id":"mine","data":1})");
    ASSERT_EQ(delivered().size(), 1u);
    EXPECT_EQ(delivered()[0].seq, 0u);
}

TEST_F(router_test, adopt_position_only_when_none_is_known) {
    EXPECT_FALSE(r.position());
    r.adopt_position(pos(9));
    EXPECT_EQ(r.position()->seq, 9u);
    r.adopt_position(pos(20));
    EXPECT_EQ(r.position()->seq, 9u);
    r.adopt_position({"other-epoch", 2, 1});
    EXPECT_EQ(r.position()->epoch, "other-epoch");
}

} // namespace
} // namespace ssegw

namespace ssegw {
namespace {

TEST_F(router_test, a_new_epoch_is_routed_and_reported_with_how_far_the_old_one_went) {
    // A promoted replica's first event opens a new epoch whose numbers may be below what this
    // process routed in the old one (events the replica never got): routed anyway, reported once.
    r.on_interest(0, "user:1", true);
    history("user:1", 7);
    history("user:1", 8);
    const stream_position next{"e2", 6, 101};
    r.route_history("user:1", next, next.format(), "after the failover");
    r.route_history("user:1", {"e2", 7, 101}, "e2.7.101", "and the next");
    EXPECT_EQ(seqs(), (std::vector<std::uint64_t>{7, 8, 6, 7}));
    ASSERT_EQ(epoch_changes.size(), 1u);
    EXPECT_EQ(epoch_changes[0].first, pos(8).format());
    EXPECT_EQ(epoch_changes[0].second, "e2");
    // A catch-up whose tip is in yet another epoch, with nothing to route: reported too.
    history_read read;
    read.ok = true;
    read.tip = {"e3", 9, 102};
    r.begin_catch_up();
    EXPECT_TRUE(r.finish_catch_up(read));
    ASSERT_EQ(epoch_changes.size(), 2u);
    EXPECT_EQ(epoch_changes[1], (std::pair<std::string, std::string>{"e2.7.101", "e3"}));
}

} // namespace
} // namespace ssegw

namespace ssegw {
namespace {

// ---- Redis Cluster history: per-channel positions, per-session ids, catch-up on moves ----

TEST_F(router_test, cluster_history_is_routed_once_per_channel_as_a_body) {
    r.on_interest(0, "user:1", true);
    r.on_interest(0, "broadcast", true);
    r.route_channel_history("user:1", {100, 1}, R"({"data":"a"})");
    r.route_channel_history("broadcast", {100, 1}, R"({"data":"b"})"); // other channel, same pos
    r.route_channel_history("user:1", {100, 1}, R"({"data":"a"})");    // a duplicate
    r.route_channel_history("user:1", {99, 7}, R"({"data":"old"})");   // an older epoch
    r.route_channel_history("user:1", {101, 1}, R"({"data":"c"})");    // a newer epoch
    ASSERT_EQ(delivered().size(), 3u);
    // No id line and no blank line: each session ends the body with its own id.
    EXPECT_EQ(got[0].bytes, "data: a\n");
    EXPECT_EQ(got[1].bytes, "data: b\n");
    EXPECT_EQ(got[2].bytes, "data: c\n");
    EXPECT_EQ(r.dropped(route_drop::duplicate), 2u);
}

TEST_F(router_test, cluster_catch_up_routes_the_gap_then_what_was_held) {
    r.on_interest(0, "user:1", true);
    // First confirmation: nothing routed yet, only the tip is read; held events all go out.
    EXPECT_FALSE(r.begin_channel_catch_up("user:1"));
    r.route_channel_history("user:1", {100, 5}, "e5");
    EXPECT_TRUE(delivered().empty());
    r.finish_channel_catch_up("user:1", {}, {100, 4}, false);
    ASSERT_EQ(delivered().size(), 1u);
    // A move: routing continues from (100, 5); events 6..8 were published meanwhile, 8 and 9
    // also arrive live while the read runs.
    const auto from = r.begin_channel_catch_up("user:1");
    ASSERT_TRUE(from);
    EXPECT_EQ(*from, (channel_position{100, 5}));
    r.route_channel_history("user:1", {100, 8}, "e8");
    r.route_channel_history("user:1", {100, 9}, "e9");
    std::vector<history_entry> read;
    for (std::uint64_t s = 6; s <= 8; ++s) {
        history_entry e;
        e.channel = "user:1";
        e.at = {100, s};
        e.payload = "e" + std::to_string(s);
        read.push_back(e);
    }
    r.finish_channel_catch_up("user:1", read, {100, 8}, false);
    std::vector<std::string> bodies;
    for (const auto& g : delivered()) bodies.push_back(g.bytes);
    EXPECT_EQ(bodies, (std::vector<std::string>{"data: e5\n", "data: e6\n", "data: e7\n",
                                                "data: e8\n", "data: e9\n"}));
    EXPECT_EQ(r.caught_up_events(), 3u);
}

TEST_F(router_test, cluster_catch_up_that_finds_events_gone_tells_the_channel_first) {
    r.on_interest(0, "user:1", true);
    r.route_channel_history("user:1", {100, 5}, "e5");
    ASSERT_TRUE(r.begin_channel_catch_up("user:1"));
    history_entry next;
    next.channel = "user:1";
    next.at = {200, 1};
    next.payload = "new-epoch";
    r.finish_channel_catch_up("user:1", {next}, {200, 1}, true);
    ASSERT_EQ(delivered().size(), 3u);
    EXPECT_EQ(got[1].bytes, "event: history-truncated\ndata: "
                            "{\"channels\":[\"user:1\"],\"reason\":\"failover\"}\n\n");
    EXPECT_EQ(got[2].bytes, "data: new-epoch\n");
}

TEST_F(router_test, cluster_catch_up_failure_releases_what_was_held) {
    r.on_interest(0, "user:1", true);
    r.route_channel_history("user:1", {100, 1}, "e1");
    ASSERT_TRUE(r.begin_channel_catch_up("user:1"));
    r.route_channel_history("user:1", {100, 2}, "e2");
    EXPECT_EQ(delivered().size(), 1u);
    r.abandon_channel_catch_up("user:1");
    EXPECT_EQ(delivered().size(), 2u);
    // A channel nobody holds any more: its state goes with it.
    r.on_interest(0, "user:1", false);
    EXPECT_FALSE(r.begin_channel_catch_up("user:1"));
}

} // namespace
} // namespace ssegw
