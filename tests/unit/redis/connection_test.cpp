// redis::connection on its own: handshake, reply delivery, failure reporting and lifetime.

#include "redis_fixture.hpp"
#include "run_until.hpp"

#include "ssegw/redis/connection.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ssegw {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

using test::run_until;

// Records every hook as a line ("up", "reply:OK", "down:<reason>:<was_up>").
struct recording_owner : connection_owner, std::enable_shared_from_this<recording_owner> {
    std::vector<std::string> events;
    std::vector<std::string> handshake; // sent from on_open
    bool awaiting_reply = true;
    std::size_t ticks = 0;
    std::function<void(const reply&)> reply_hook;
    std::optional<connection> link;

    static std::shared_ptr<recording_owner> make(asio::io_context& io, redis_endpoint ep,
                                                 connection_options o = fast()) {
        auto owner = std::make_shared<recording_owner>();
        owner->link.emplace(io, std::move(ep), std::move(o), owner);
        return owner;
    }
    static connection_options fast() {
        connection_options o;
        o.reconnect_min = 20ms;
        o.reconnect_max = 200ms;
        o.ping_interval = 1s;
        o.log_name = "redis test";
        return o;
    }

    void on_open() override {
        events.push_back("open");
        for (auto& cmd : handshake) link->send(encode_command({"ECHO", cmd}));
    }
    void on_up() override { events.push_back("up"); }
    void on_reply(reply&& r) override {
        events.push_back("reply:" + r.str);
        if (reply_hook) reply_hook(r);
    }
    void on_tick() override { ++ticks; }
    bool awaiting() const override { return awaiting_reply; }
    void on_down(const std::string& reason, bool was_up) override {
        events.push_back("down:" + reason + ":" + (was_up ? "up" : "not-up"));
    }

    bool saw(const std::string& e) const {
        return std::find(events.begin(), events.end(), e) != events.end();
    }
    bool saw_prefix(const std::string& p) const {
        for (auto& e : events)
            if (e.rfind(p, 0) == 0) return true;
        return false;
    }
};

class redis_connection : public ::testing::Test {
protected:
    test::redis_server server_;
    asio::io_context io_{1};
};

TEST_F(redis_connection, handshake_commands_are_answered_before_up_then_replies_flow_in_order) {
    auto owner = recording_owner::make(io_, server_.endpoint());
    owner->handshake = {"a", "b"};
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->up(); }));
    EXPECT_EQ(owner->events, (std::vector<std::string>{"open", "reply:a", "reply:b", "up"}));
    EXPECT_EQ(owner->link->own_in_flight(), 0u);

    EXPECT_TRUE(owner->link->send(encode_command({"ECHO", "c"}) + encode_command({"ECHO", "d"})));
    ASSERT_TRUE(run_until(io_, [&] { return owner->saw("reply:d"); }));
    EXPECT_EQ(owner->events.at(4), "reply:c");
    EXPECT_EQ(owner->link->reconnects(), 0u);
    EXPECT_EQ(owner->link->last_error(), "");
}

TEST_F(redis_connection, send_without_a_link_is_refused) {
    auto owner = recording_owner::make(io_, server_.endpoint());
    EXPECT_FALSE(owner->link->open());
    EXPECT_FALSE(owner->link->send(encode_command({"PING"})));
}

TEST_F(redis_connection, sends_soon_after_a_write_wait_for_the_window_idle_ones_go_at_once) {
    auto options = recording_owner::fast();
    options.write_coalesce = 1s;
    auto owner = recording_owner::make(io_, server_.endpoint(), options);
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->up(); }));
    // The handshake was written just before up: these two wait for the rest of its window and
    // go out together.
    const auto busy_at = std::chrono::steady_clock::now();
    owner->link->send(encode_command({"ECHO", "a"}));
    owner->link->send(encode_command({"ECHO", "b"}));
    ASSERT_TRUE(run_until(io_, [&] { return owner->saw("reply:b"); }));
    EXPECT_GE(std::chrono::steady_clock::now() - busy_at, 500ms);
    EXPECT_TRUE(owner->saw("reply:a"));
    // Quiet for longer than the window: the next command is written at once.
    run_until(
        io_, [] { return false; }, 1100ms);
    const auto idle_at = std::chrono::steady_clock::now();
    owner->link->send(encode_command({"ECHO", "c"}));
    ASSERT_TRUE(run_until(io_, [&] { return owner->saw("reply:c"); }));
    EXPECT_LT(std::chrono::steady_clock::now() - idle_at, 500ms);
}

TEST_F(redis_connection, auth_and_select_are_consumed_by_the_connection) {
    test::redis_server secured({"--requirepass", "pw"});
    redis_endpoint ep = secured.endpoint();
    ep.password = "pw";
    ep.db = 2;
    auto owner = recording_owner::make(io_, ep);
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->up(); }));
    EXPECT_EQ(owner->events, (std::vector<std::string>{"open", "up"}));
    owner->link->send(encode_command({"SET", "k", "v"}) + encode_command({"INFO", "keyspace"}));
    ASSERT_TRUE(run_until(io_, [&] { return owner->events.size() == 4; }));
    EXPECT_EQ(owner->events[2], "reply:OK");
    EXPECT_NE(owner->events[3].find("db2:keys=1"), std::string::npos) << owner->events[3];
}

TEST_F(redis_connection, select_can_be_left_out) {
    redis_endpoint ep = server_.endpoint();
    ep.db = 5;
    auto options = recording_owner::fast();
    options.select_db = false;
    auto owner = recording_owner::make(io_, ep, options);
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->up(); }));
    owner->link->send(encode_command({"SET", "k", "v"}) + encode_command({"INFO", "keyspace"}));
    ASSERT_TRUE(run_until(io_, [&] { return owner->events.size() == 4; }));
    EXPECT_NE(owner->events[3].find("db0:keys=1"), std::string::npos) << owner->events[3];
}

TEST_F(redis_connection, wrong_password_fails_before_up_and_retries) {
    test::redis_server secured({"--requirepass", "pw"});
    redis_endpoint ep = secured.endpoint();
    ep.password = "nope";
    auto owner = recording_owner::make(io_, ep);
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->reconnects() >= 2; }));
    EXPECT_FALSE(owner->saw("up"));
    EXPECT_TRUE(owner->saw_prefix("down:AUTH failed: ")) << owner->events.back();
    EXPECT_NE(owner->link->last_error().find("AUTH failed"), std::string::npos);
}

TEST_F(redis_connection, silent_listener_times_out_the_handshake) {
    // Listening but never accepting: the kernel completes the TCP handshake, nobody answers.
    tcp::acceptor silent(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    redis_endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = silent.local_endpoint().port();
    auto owner = recording_owner::make(io_, ep);
    owner->link->start();
    ASSERT_TRUE(run_until(
        io_, [&] { return owner->link->reconnects() >= 1; }, 4s));
    EXPECT_EQ(owner->link->last_error(), "connect timed out");
    EXPECT_TRUE(owner->saw("down:connect timed out:not-up"));
}

TEST_F(redis_connection, malformed_data_counts_as_protocol_error) {
    tcp::acceptor liar(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    std::vector<std::shared_ptr<tcp::socket>> peers;
    std::function<void()> accept_one = [&] {
        liar.async_accept([&](boost::system::error_code ec, tcp::socket s) {
            if (ec) return;
            auto peer = std::make_shared<tcp::socket>(std::move(s));
            peers.push_back(peer);
            static const std::string garbage = "?not resp\r\n";
            asio::async_write(*peer, asio::buffer(garbage),
                              [](boost::system::error_code, std::size_t) {});
            accept_one();
        });
    };
    accept_one();
    redis_endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = liar.local_endpoint().port();
    auto owner = recording_owner::make(io_, ep);
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->protocol_errors() >= 1; }));
    EXPECT_FALSE(owner->saw("up"));
    owner->link->stop();
    liar.close();
    io_.run_for(50ms);
}

TEST_F(redis_connection, silence_while_awaiting_drops_an_up_link) {
    auto options = recording_owner::fast();
    options.stall_reason = "stalled";
    auto owner = recording_owner::make(io_, server_.endpoint(), options);
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->up(); }));
    server_.pause();
    ASSERT_TRUE(run_until(
        io_, [&] { return owner->saw_prefix("down:"); }, 4s));
    EXPECT_TRUE(owner->saw("down:stalled:up"));
    EXPECT_GE(owner->ticks, 1u); // the owner was asked for a probe on the way
    server_.resume();
    ASSERT_TRUE(run_until(
        io_, [&] { return owner->link->up(); }, 6s));
}

TEST_F(redis_connection, silence_while_not_awaiting_is_fine) {
    auto owner = recording_owner::make(io_, server_.endpoint());
    owner->awaiting_reply = false;
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->up(); }));
    server_.pause();
    io_.run_for(2500ms);
    EXPECT_TRUE(owner->link->up());
    EXPECT_GE(owner->ticks, 2u);
    server_.resume();
}

TEST_F(redis_connection, stop_reports_nothing_and_owner_may_go_away_inside_a_hook) {
    auto owner = recording_owner::make(io_, server_.endpoint());
    owner->link->start();
    ASSERT_TRUE(run_until(io_, [&] { return owner->link->up(); }));
    owner->link->stop();
    EXPECT_TRUE(owner->link->stopped());
    EXPECT_FALSE(owner->link->send(encode_command({"PING"})));
    io_.run_for(100ms);
    EXPECT_FALSE(owner->saw_prefix("down:"));

    // The owner drops its last reference from on_reply, with more replies already buffered.
    std::weak_ptr<recording_owner> weak;
    {
        auto doomed = recording_owner::make(io_, server_.endpoint());
        weak = doomed;
        doomed->link->start();
        ASSERT_TRUE(run_until(io_, [&] { return doomed->link->up(); }));
        auto* raw = doomed.get();
        std::shared_ptr<recording_owner> keeper = std::move(doomed);
        raw->reply_hook = [&keeper](const reply&) {
            keeper.reset();
        }; // destroys the connection too
        raw->link->send(encode_command({"ECHO", "1"}) + encode_command({"ECHO", "2"}));
        ASSERT_TRUE(run_until(io_, [&] { return !keeper; }));
    }
    EXPECT_TRUE(weak.expired());
    io_.run_for(100ms); // late completions find a stopped connection and no owner
}

TEST_F(redis_connection, destroyed_with_operations_pending) {
    auto owner = recording_owner::make(io_, server_.endpoint());
    owner->link->start();
    io_.poll(); // resolve/connect in flight
    owner.reset();
    io_.run_for(200ms);
}

} // namespace
} // namespace ssegw
