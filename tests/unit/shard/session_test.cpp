#include "ssegw/shard/session.hpp"

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

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

    std::shared_ptr<session> open(shard& sh) {
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
        auto s = std::make_shared<session>(sh, std::move(server), "u",
                                           std::vector<std::string>{"user:u"}, 0, false);
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

} // namespace
} // namespace ssegw
