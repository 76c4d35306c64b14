#include "ssegw/shard/session.hpp"

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "ssegw/shard/shard.hpp"
#include "ssegw/shard/shard_set.hpp"

namespace ssegw {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

/// One shard (its loop driven by the test, on this thread) and a session on a real loopback
/// connection whose client end never reads, so writes stall as they do for a slow consumer.
struct stalled_stream : ::testing::Test {
    stalled_stream() {
        cfg.server.max_connections_per_user = 32;
        cfg.sse.max_queue_bytes = 256 * 1024;
    }

    std::shared_ptr<session> open(shard& sh, std::vector<std::string> channels = {"user:u"},
                                  bool awaits_history = false, std::int64_t expires_at = 0) {
        tcp::acceptor acceptor(sh.context(), {asio::ip::make_address("127.0.0.1"), 0});
        client = std::make_unique<tcp::socket>(sh.context());
        client->open(tcp::v4());
        // Small buffers: the kernel absorbs little before the session's writes stall.
        client->set_option(asio::socket_base::receive_buffer_size(4096));
        client->connect(acceptor.local_endpoint());
        shard_socket server(sh.context());
        acceptor.accept(server);
        server.set_option(asio::socket_base::send_buffer_size(4096));
        EXPECT_TRUE(sh.set().users().try_acquire("u"));
        sh.reserve_slot();
        auto s = std::make_shared<session>(sh, std::move(server), "u", std::move(channels),
                                           expires_at, awaits_history);
        sh.attach(s, make_comment_frame("connected"));
        return s;
    }

    gateway_config cfg;
    /// Declared before the client socket: destroyed after it, since the socket belongs to a
    /// shard's io_context (ASan caught the other order).
    std::optional<shard_set> shards;
    std::unique_ptr<tcp::socket> client;
};

TEST_F(stalled_stream, slow_consumer_cut_during_a_write_leaves_no_bytes_counted) {
    shards.emplace(1, cfg);
    shard& sh = (*shards)[0];
    auto s = open(sh);

    auto ev = std::make_shared<routed_event>();
    ev->channel = "user:u";
    ev->bytes =
        std::make_shared<const std::string>("data: " + std::string(64 * 1024, 'x') + "\n\n");
    const std::vector<routed_event_ptr> batch{ev};
    // Deliver until the queue limit cuts the stream: a write is in flight all along.
    for (int i = 0; i < 200 && !s->leaving(); ++i) {
        sh.deliver(batch);
        sh.context().poll();
    }
    ASSERT_TRUE(s->leaving()) << "the stream was never cut as a slow consumer";
    // The cut closes the socket, which aborts the write in flight; run until both happened.
    for (int i = 0; i < 200 && !(s->closed() && s->queued_bytes() == 0); ++i)
        sh.context().run_one_for(std::chrono::milliseconds(10));
    EXPECT_TRUE(s->closed());
    // Before the fix the cut zeroed the count while a write still held frames; the aborted
    // write then subtracted them again and the unsigned count wrapped around.
    EXPECT_EQ(s->queued_bytes(), 0u);
    EXPECT_EQ(shards->connections_total().load(), 0u);
    EXPECT_EQ(sh.counters().closed[static_cast<std::size_t>(close_reason::slow_consumer)].load(),
              1u);
}

TEST_F(stalled_stream, frames_queued_while_writes_are_in_flight_arrive_once_and_in_order) {
    // The client reads slowly (small buffers): frames pile up behind the write in flight,
    // single and gathered writes alternate, and the queue's vector grows under a write.
    shards.emplace(1, cfg);
    shard& sh = (*shards)[0];
    auto s = open(sh);
    client->non_blocking(true);
    std::string got;
    auto read_some = [&] {
        std::array<char, 4096> buf;
        boost::system::error_code ec;
        for (int i = 0; i < 64; ++i) {
            const auto n = client->read_some(asio::buffer(buf), ec);
            if (ec) return;
            got.append(buf.data(), n);
        }
    };
    std::string want = *make_comment_frame("connected");
    for (int i = 0; i < 400; ++i) {
        auto ev = std::make_shared<routed_event>();
        ev->channel = "user:u";
        ev->bytes = std::make_shared<const std::string>("data: " + std::to_string(i) + " " +
                                                        std::string(700, 'a' + i % 26) + "\n\n");
        want += *ev->bytes;
        sh.deliver({ev});
        if (i % 7 == 0) {
            sh.context().poll();
            read_some();
        }
    }
    for (int i = 0; i < 1000 && got.size() < want.size(); ++i) {
        sh.context().poll();
        read_some();
        if (got.size() < want.size()) sh.context().run_one_for(std::chrono::milliseconds(5));
    }
    EXPECT_FALSE(s->leaving());
    EXPECT_EQ(got.size(), want.size());
    EXPECT_TRUE(got == want) << "frames lost, repeated or out of order";
    EXPECT_EQ(s->queued_bytes(), 0u);
    s->close(close_reason::client_gone);
}

/// What the client end can read within `limit` without the shard running (blocking reads
/// would hang a failing test): polls `available()`, bounded in time.
std::string read_until_blank_line(tcp::socket& client, std::chrono::milliseconds limit) {
    std::string got;
    const auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end && !got.ends_with("\n\n")) {
        boost::system::error_code ec;
        const auto n = client.available(ec);
        if (ec) break;
        if (n == 0) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            continue;
        }
        std::string chunk(n, '\0');
        chunk.resize(client.read_some(asio::buffer(chunk), ec));
        got += chunk;
    }
    return got;
}

TEST_F(stalled_stream, cluster_event_leaves_as_one_write_of_body_and_id) {
    // A history event in cluster mode is a shared body plus this session's own id line. On an
    // idle stream both must go in the write that delivery starts: queued one by one, the body
    // left at once and the id waited for the shard to run again (a second write, a second TCP
    // segment, for every delivery).
    shards.emplace(1, cfg);
    shard& sh = (*shards)[0];
    const std::vector<std::string> channels{"user:u", "broadcast"};
    auto s = open(sh, channels, true);
    auto read = std::make_shared<history_read>();
    read->ok = true;
    read->channel_from = read->channel_tips = {{10, 1}, {20, 1}};
    resume_request req;
    req.asked_at = std::chrono::steady_clock::now();
    s->on_history(read, req);
    for (int i = 0; i < 200 && s->queued_bytes() != 0; ++i)
        sh.context().run_one_for(std::chrono::milliseconds(10));
    ASSERT_EQ(s->queued_bytes(), 0u) << "the head and position block were never written";
    const auto head = read_until_blank_line(*client, std::chrono::seconds(2));
    ASSERT_NE(head.find("event: ssegw-position"), std::string::npos) << head;

    auto ev = std::make_shared<routed_event>();
    ev->channel = "broadcast";
    ev->bytes = std::make_shared<const std::string>("data: hello\n");
    ev->per_session_id = true;
    ev->at = {20, 2};
    sh.deliver({ev}); // the shard's loop does not run again below
    composite_position expected(channels, {{10, 1}, {20, 2}});
    EXPECT_EQ(read_until_blank_line(*client, std::chrono::seconds(2)),
              "data: hello\n" + *expected.id_tail());
}

// What a delivery costs a shard, end to end on loopback: the session's work and its write, for
// a shared frame (single mode, live events) and for a cluster history event, whose id each
// session writes itself (3 and 34 channels). 200 idle streams, one event at a time to all of
// them, as a broadcast. Printed, not asserted; docs/architecture.md ("Per-session ids") quotes
// runs.
// The shard visits a stream only at the tick on_tick() asked for: an idle stream asks for its
// first deadline (heartbeat, token expiry), a stream with something in motion for the next tick.
TEST_F(stalled_stream, an_idle_stream_asks_to_be_visited_at_its_first_deadline) {
    cfg.sse.heartbeat_seconds = 15;
    cfg.auth.expiry_notice_seconds = 0;
    cfg.auth.jwt.leeway_seconds = 0;
    shards.emplace(1, cfg);
    shard& sh = (*shards)[0];
    const std::int64_t unix_now = 1'700'000'000;
    auto plain = open(sh);
    auto client_of_plain = std::move(client);
    auto expiring = open(sh, {"user:u"}, false, unix_now + 5);
    // Let both openings leave: nothing is in motion afterwards.
    for (int i = 0; i < 200 && (plain->queued_bytes() != 0 || expiring->queued_bytes() != 0); ++i)
        sh.context().run_one_for(std::chrono::milliseconds(10));
    ASSERT_EQ(plain->queued_bytes(), 0u);
    const std::uint32_t t = sh.now_tick();
    const auto& heartbeats = sh.counters().heartbeats;

    EXPECT_EQ(plain->on_tick(t, unix_now), t + 15) << "next: the heartbeat";
    EXPECT_EQ(expiring->on_tick(t, unix_now), t + 5) << "next: the token's expiry";
    EXPECT_EQ(heartbeats.load(), 0u);

    // At the heartbeat's tick it is written, and while it is in motion: every tick.
    EXPECT_EQ(plain->on_tick(t + 15, unix_now + 15), t + 16);
    EXPECT_EQ(heartbeats.load(), 1u);
    // At the expiry's tick the stream is sent away (a retry hint, then closed).
    EXPECT_EQ(expiring->on_tick(t + 5, unix_now + 5), t + 6);
    EXPECT_TRUE(expiring->leaving());
}

TEST(SessionMeasure, MeasureBroadcastDeliveryCost) {
    gateway_config cfg;
    cfg.server.max_connections_per_user = 4;
    cfg.sse.max_queue_bytes = 1 << 20;
    constexpr int streams = 200, rounds = 10, events_per_round = 20;
    struct variant {
        const char* name;
        bool cluster;
        int topics;
    };
    for (const auto& [name, cluster, topics] :
         {variant{"shared frame", false, 1}, variant{"cluster, 3 channels", true, 1},
          variant{"cluster, 34 channels", true, 32}}) {
        shard_set shards(1, cfg);
        shard& sh = shards[0];
        tcp::acceptor acceptor(sh.context(), {asio::ip::make_address("127.0.0.1"), 0});
        std::vector<std::unique_ptr<tcp::socket>> clients;
        std::vector<std::shared_ptr<session>> sessions;
        for (int i = 0; i < streams; ++i) {
            auto client = std::make_unique<tcp::socket>(sh.context());
            client->connect(acceptor.local_endpoint());
            client->non_blocking(true);
            shard_socket server(sh.context());
            acceptor.accept(server);
            const auto user = "u" + std::to_string(i);
            std::vector<std::string> channels{"user:" + user, "broadcast"};
            for (int t = 0; t < topics; ++t) channels.push_back("topic:t" + std::to_string(t));
            ASSERT_TRUE(shards.users().try_acquire(user));
            sh.reserve_slot();
            auto s = std::make_shared<session>(sh, std::move(server), user, channels, 0, cluster);
            sh.attach(s, make_comment_frame("connected"));
            if (cluster) {
                auto read = std::make_shared<history_read>();
                read->ok = true;
                read->channel_from = read->channel_tips =
                    std::vector<channel_position>(channels.size(), {1764594933123, 1000});
                resume_request req;
                req.asked_at = std::chrono::steady_clock::now();
                s->on_history(read, req);
            }
            sessions.push_back(std::move(s));
            clients.push_back(std::move(client));
        }
        const auto drain = [&] {
            std::array<char, 65536> sink;
            for (auto& c : clients) {
                boost::system::error_code ec;
                while (c->read_some(asio::buffer(sink), ec) > 0 && !ec) {}
            }
        };
        sh.context().poll();
        drain();
        std::uint64_t seq = 1000;
        std::chrono::nanoseconds spent{0};
        for (int r = 0; r < rounds; ++r) {
            for (int e = 0; e < events_per_round; ++e) {
                auto ev = std::make_shared<routed_event>();
                ev->channel = "broadcast";
                if (cluster) {
                    ev->bytes = std::make_shared<const std::string>("data: hello\n");
                    ev->per_session_id = true;
                    ev->at = {1764594933123, ++seq};
                } else {
                    ev->bytes = std::make_shared<const std::string>("data: hello\n\n");
                }
                const auto t0 = std::chrono::steady_clock::now();
                sh.deliver({ev});
                sh.context().poll(); // the writes' completions
                spent += std::chrono::steady_clock::now() - t0;
            }
            drain(); // outside the clock: the clients' side
        }
        std::size_t queued = 0;
        for (const auto& s : sessions) queued += s->queued_bytes() + (s->leaving() ? 1 : 0);
        EXPECT_EQ(queued, 0u) << "every stream kept up";
        std::printf("%s: %.0f ns per delivery (%d streams x %d events)\n", name,
                    double(spent.count()) / (streams * rounds * events_per_round), streams,
                    rounds * events_per_round);
        for (auto& s : sessions) s->close(close_reason::client_gone);
        sh.context().poll();
    }
}

} // namespace
} // namespace ssegw
