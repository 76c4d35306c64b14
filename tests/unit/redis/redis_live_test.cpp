// The Redis layer against a real redis-server (started per test on a free loopback port).

#include "redis_fixture.hpp"
#include "run_until.hpp"

#include "ssegw/redis/command_client.hpp"
#include "ssegw/redis/subscriber.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace ssegw {
namespace {

using namespace std::chrono_literals;
namespace asio = boost::asio;

using test::run_until;

struct recorder {
    std::vector<std::pair<std::string, std::string>> messages;
    std::vector<bool> states;
    std::vector<std::string> subscribed;

    subscriber_handlers handlers() {
        subscriber_handlers h;
        h.on_message = [this](std::string_view c, std::string_view p) {
            messages.emplace_back(c, p);
        };
        h.on_state = [this](bool up) { states.push_back(up); };
        h.on_subscribed = [this](std::string_view c) { subscribed.emplace_back(c); };
        return h;
    }
    bool got(std::string_view channel, std::string_view payload) const {
        for (auto& [c, p] : messages)
            if (c == channel && p == payload) return true;
        return false;
    }
};

subscriber_options fast_options() {
    subscriber_options o;
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    o.ping_interval = 1s;
    return o;
}

long long publish(std::uint16_t port, const std::string& channel, const std::string& payload) {
    return test::run_command(port, {"PUBLISH", channel, payload}).integer;
}

class redis_live : public ::testing::Test {
protected:
    test::redis_server server_;
    asio::io_context io_{1};
    recorder rec_;
};

TEST_F(redis_live, subscribe_publish_unsubscribe) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    EXPECT_EQ(rec_.states, std::vector<bool>{true});

    sub.subscribe("sse:user:1");
    ASSERT_TRUE(run_until(io_, [&] { return sub.channel_count() == 1; }));
    EXPECT_EQ(rec_.subscribed, std::vector<std::string>{"sse:user:1"});
    EXPECT_EQ(test::numsub(server_.port(), "sse:user:1"), 1);

    std::string payload("{\"event\":\"x\",\"data\":\"a\\nb\"}\r\n\0tail", 34);
    EXPECT_EQ(publish(server_.port(), "sse:user:1", payload), 1);
    ASSERT_TRUE(run_until(io_, [&] { return rec_.got("sse:user:1", payload); }));

    sub.unsubscribe("sse:user:1");
    ASSERT_TRUE(run_until(io_, [&] { return sub.channel_count() == 0; }));
    EXPECT_EQ(test::numsub(server_.port(), "sse:user:1"), 0);
    EXPECT_EQ(sub.protocol_errors(), 0u);
    EXPECT_EQ(sub.reconnects(), 0u);
}

TEST_F(redis_live, subscriptions_made_before_connect_are_sent_at_connect) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.subscribe("a");
    sub.subscribe("b");
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    // on_state(true) promises the connect-time subscriptions are confirmed already.
    EXPECT_EQ(sub.channel_count(), 2u);
    EXPECT_EQ(test::numsub(server_.port(), "a"), 1);
    EXPECT_EQ(test::numsub(server_.port(), "b"), 1);
}

TEST_F(redis_live, thousand_channels_in_one_batch) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    for (int i = 0; i < 1000; ++i) sub.subscribe("sse:topic:t" + std::to_string(i));
    ASSERT_TRUE(run_until(io_, [&] { return sub.channel_count() == 1000; }));
    EXPECT_EQ(test::numsub(server_.port(), "sse:topic:t0"), 1);
    EXPECT_EQ(test::numsub(server_.port(), "sse:topic:t999"), 1);
    // One batch, chunked at 512 names: exactly two SUBSCRIBE commands.
    auto info = test::run_command(server_.port(), {"INFO", "commandstats"}).str;
    EXPECT_NE(info.find("cmdstat_subscribe:calls=2,"), std::string::npos) << info;

    EXPECT_EQ(publish(server_.port(), "sse:topic:t777", "hi"), 1);
    ASSERT_TRUE(run_until(io_, [&] { return rec_.got("sse:topic:t777", "hi"); }));

    for (int i = 0; i < 1000; ++i) sub.unsubscribe("sse:topic:t" + std::to_string(i));
    ASSERT_TRUE(run_until(io_, [&] { return sub.channel_count() == 0; }));
    EXPECT_EQ(test::numsub(server_.port(), "sse:topic:t500"), 0);
}

TEST_F(redis_live, subscribe_then_unsubscribe_in_one_batch_cancels_out) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    sub.subscribe("ghost");
    sub.unsubscribe("ghost");
    sub.subscribe("real");
    ASSERT_TRUE(run_until(io_, [&] { return sub.channel_count() == 1; }));
    auto info = test::run_command(server_.port(), {"INFO", "commandstats"}).str;
    EXPECT_EQ(info.find("cmdstat_unsubscribe"), std::string::npos) << info;
    EXPECT_EQ(test::numsub(server_.port(), "ghost"), 0);
    EXPECT_EQ(rec_.subscribed, std::vector<std::string>{"real"});
}

TEST_F(redis_live, unsubscribe_while_subscribe_in_flight_settles_unsubscribed) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    sub.subscribe("flip");
    // Let the batch go out, then change our mind before the confirmation can be processed.
    asio::post(io_, [&] { asio::post(io_, [&] { sub.unsubscribe("flip"); }); });
    ASSERT_TRUE(run_until(io_, [&] { return !rec_.subscribed.empty(); }));
    ASSERT_TRUE(run_until(io_, [&] {
        return sub.channel_count() == 0 && test::numsub(server_.port(), "flip") == 0;
    }));
}

TEST_F(redis_live, psubscribe_delivers_concrete_channel) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.psubscribe("sse:topic:*");
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    EXPECT_EQ(publish(server_.port(), "sse:topic:prices", "42"), 1);
    ASSERT_TRUE(run_until(io_, [&] { return rec_.got("sse:topic:prices", "42"); }));
}

TEST_F(redis_live, client_kill_reconnects_and_resubscribes) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.subscribe("sse:broadcast");
    sub.psubscribe("sse:topic:*");
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));

    auto killed = test::run_command(server_.port(), {"CLIENT", "KILL", "TYPE", "pubsub"});
    EXPECT_EQ(killed.integer, 1);
    ASSERT_TRUE(run_until(io_, [&] { return rec_.states.size() >= 3; }));
    EXPECT_EQ(rec_.states, (std::vector<bool>{true, false, true}));
    EXPECT_TRUE(sub.connected());
    EXPECT_EQ(sub.reconnects(), 1u);
    EXPECT_EQ(sub.channel_count(), 1u);

    EXPECT_EQ(publish(server_.port(), "sse:broadcast", "after"), 1);
    EXPECT_EQ(publish(server_.port(), "sse:topic:x", "after-p"), 1);
    ASSERT_TRUE(run_until(io_, [&] {
        return rec_.got("sse:broadcast", "after") && rec_.got("sse:topic:x", "after-p");
    }));
}

TEST_F(redis_live, server_restart_on_same_port_reconnects_and_resubscribes) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.subscribe("sse:user:7");
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));

    server_.stop();
    ASSERT_TRUE(run_until(io_, [&] { return !sub.connected(); }));
    EXPECT_EQ(rec_.states, (std::vector<bool>{true, false}));
    // A few refused attempts while it is down: reported once, retried with backoff.
    ASSERT_TRUE(run_until(io_, [&] { return sub.reconnects() >= 3; }));
    EXPECT_EQ(rec_.states.size(), 2u);

    server_.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    EXPECT_EQ(rec_.states, (std::vector<bool>{true, false, true}));
    EXPECT_EQ(test::numsub(server_.port(), "sse:user:7"), 1);
    EXPECT_EQ(publish(server_.port(), "sse:user:7", "back"), 1);
    ASSERT_TRUE(run_until(io_, [&] { return rec_.got("sse:user:7", "back"); }));
}

TEST_F(redis_live, unresponsive_server_is_detected_by_ping) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.subscribe("c");
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    server_.pause();
    ASSERT_TRUE(run_until(
        io_, [&] { return !sub.connected(); }, 6s));
    server_.resume();
    ASSERT_TRUE(run_until(
        io_, [&] { return sub.connected(); }, 8s));
    EXPECT_EQ(test::numsub(server_.port(), "c"), 1);
}

TEST_F(redis_live, auth_with_password) {
    test::redis_server secured({"--requirepass", "pw"});
    redis_endpoint ep = secured.endpoint();
    ep.password = "pw";
    subscriber sub(io_, ep, fast_options(), rec_.handlers());
    sub.subscribe("s");
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
    EXPECT_EQ(sub.channel_count(), 1u);
}

TEST_F(redis_live, wrong_password_retries_without_reporting_up) {
    test::redis_server secured({"--requirepass", "pw"});
    redis_endpoint ep = secured.endpoint();
    ep.password = "nope";
    subscriber sub(io_, ep, fast_options(), rec_.handlers());
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.reconnects() >= 2; }));
    EXPECT_FALSE(sub.connected());
    EXPECT_TRUE(rec_.states.empty());
    EXPECT_NE(sub.last_error().find("AUTH failed"), std::string::npos) << sub.last_error();
}

TEST_F(redis_live, stop_and_destroy_with_operations_pending) {
    {
        auto sub =
            std::make_unique<subscriber>(io_, server_.endpoint(), fast_options(), rec_.handlers());
        sub->subscribe("x");
        sub->start();
        io_.poll(); // resolve/connect in flight
        sub.reset();
    }
    {
        subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
        sub.start();
        ASSERT_TRUE(run_until(io_, [&] { return sub.connected(); }));
        sub.subscribe("y");
        sub.stop();
        sub.subscribe("z"); // ignored after stop
    }
    // Let every late completion run: none may call back or touch freed memory.
    auto before = rec_.states.size();
    io_.run_for(200ms);
    EXPECT_EQ(rec_.states.size(), before);
}

TEST_F(redis_live, handler_may_stop_the_subscriber_and_exceptions_are_contained) {
    std::unique_ptr<subscriber> sub;
    subscriber_handlers h = rec_.handlers();
    h.on_message = [&](std::string_view c, std::string_view p) {
        rec_.messages.emplace_back(c, p);
        if (p == "throw") throw std::runtime_error("boom");
        if (p == "stop") sub.reset();
    };
    sub = std::make_unique<subscriber>(io_, server_.endpoint(), fast_options(), h);
    sub->subscribe("c");
    sub->start();
    ASSERT_TRUE(run_until(io_, [&] { return sub->connected(); }));
    publish(server_.port(), "c", "throw");
    publish(server_.port(), "c", "after-throw");
    ASSERT_TRUE(run_until(io_, [&] { return rec_.got("c", "after-throw"); }));
    EXPECT_TRUE(sub->connected());
    publish(server_.port(), "c", "stop");
    publish(server_.port(), "c", "never");
    ASSERT_TRUE(run_until(io_, [&] { return !sub; }));
    io_.run_for(100ms);
    EXPECT_FALSE(rec_.got("c", "never"));
}

TEST_F(redis_live, unreachable_host_keeps_retrying) {
    redis_endpoint ep;
    ep.host = "127.0.0.1";
    ep.port = test::pick_free_port(); // nothing listens there
    subscriber sub(io_, ep, fast_options(), rec_.handlers());
    sub.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.reconnects() >= 3; }));
    EXPECT_TRUE(rec_.states.empty());
    EXPECT_FALSE(sub.connected());
}

// ---- command_client -------------------------------------------------------------------------

struct outcome {
    bool done = false;
    std::optional<reply> result;
    std::string error;
    command_client::completion capture() {
        return [this](std::optional<reply> r, std::string e) {
            done = true;
            result = std::move(r);
            error = std::move(e);
        };
    }
};

command_client make_client(asio::io_context& io, const redis_endpoint& ep) {
    return command_client(io, ep, 20ms, 200ms, 1s);
}

TEST_F(redis_live, command_client_publish_returns_receiver_count) {
    subscriber sub(io_, server_.endpoint(), fast_options(), rec_.handlers());
    sub.subscribe("sse:user:9");
    sub.start();
    command_client client(io_, server_.endpoint(), 20ms, 200ms);
    client.start();
    ASSERT_TRUE(run_until(io_, [&] { return sub.connected() && client.connected(); }));

    outcome o;
    client.execute({"PUBLISH", "sse:user:9", "hello"}, o.capture());
    ASSERT_TRUE(run_until(io_, [&] { return o.done; }));
    EXPECT_EQ(o.error, "");
    ASSERT_TRUE(o.result);
    EXPECT_EQ(o.result->type, reply::kind::integer);
    EXPECT_EQ(o.result->integer, 1);
    ASSERT_TRUE(run_until(io_, [&] { return rec_.got("sse:user:9", "hello"); }));
}

TEST_F(redis_live, command_client_pipelines_in_order_and_reports_redis_errors) {
    command_client client(io_, server_.endpoint(), 20ms, 200ms);
    client.start();
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    std::vector<long long> seen;
    for (int i = 0; i < 500; ++i)
        client.execute({"INCR", "n"}, [&](std::optional<reply> r, std::string e) {
            ASSERT_TRUE(e.empty()) << e;
            seen.push_back(r->integer);
        });
    outcome err;
    client.execute({"NO-SUCH-COMMAND"}, err.capture());
    ASSERT_TRUE(run_until(io_, [&] { return err.done; }));
    ASSERT_EQ(seen.size(), 500u);
    for (int i = 0; i < 500; ++i) EXPECT_EQ(seen[i], i + 1);
    ASSERT_TRUE(err.result);
    EXPECT_EQ(err.result->type, reply::kind::error);
    EXPECT_NE(err.error.find("ERR"), std::string::npos) << err.error;
    EXPECT_TRUE(client.connected()); // an error reply is not a link failure
}

TEST_F(redis_live, command_client_fails_fast_while_redis_is_down) {
    command_client client = make_client(io_, server_.endpoint());
    outcome before_start;
    client.execute({"PING"}, before_start.capture());
    EXPECT_FALSE(before_start.done); // never inline
    ASSERT_TRUE(run_until(
        io_, [&] { return before_start.done; }, 1s));
    EXPECT_EQ(before_start.error, "redis unavailable");

    client.start();
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    server_.stop();
    ASSERT_TRUE(run_until(io_, [&] { return !client.connected(); }));
    auto t0 = std::chrono::steady_clock::now();
    outcome down;
    client.execute({"PUBLISH", "c", "x"}, down.capture());
    ASSERT_TRUE(run_until(
        io_, [&] { return down.done; }, 1s));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 100ms);
    EXPECT_EQ(down.error, "redis unavailable");
    EXPECT_FALSE(down.result);

    server_.start();
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    outcome back;
    client.execute({"PING"}, back.capture());
    ASSERT_TRUE(run_until(io_, [&] { return back.done; }));
    EXPECT_EQ(back.error, "");
}

TEST_F(redis_live, command_client_fails_pending_commands_when_the_link_dies) {
    command_client client = make_client(io_, server_.endpoint());
    client.start();
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    server_.pause();
    std::vector<outcome> pending(20);
    for (auto& o : pending) client.execute({"PING"}, o.capture());
    io_.run_for(100ms);
    for (auto& o : pending) EXPECT_FALSE(o.done);
    server_.stop(); // the kernel closes the stopped server's sockets
    ASSERT_TRUE(run_until(io_, [&] {
        for (auto& o : pending)
            if (!o.done) return false;
        return true;
    }));
    for (auto& o : pending) {
        EXPECT_FALSE(o.result);
        EXPECT_EQ(o.error.rfind("redis connection lost", 0), 0u) << o.error;
    }
    EXPECT_EQ(client.in_flight(), 0u);
}

TEST_F(redis_live, command_client_times_out_an_unresponsive_server) {
    command_client client = make_client(io_, server_.endpoint());
    client.start();
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    server_.pause();
    outcome o;
    client.execute({"PING"}, o.capture());
    ASSERT_TRUE(run_until(
        io_, [&] { return o.done; }, 5s));
    EXPECT_EQ(o.error.rfind("redis connection lost", 0), 0u) << o.error;
    server_.resume();
    ASSERT_TRUE(run_until(
        io_, [&] { return client.connected(); }, 8s));
}

TEST_F(redis_live, command_client_bounds_in_flight_commands) {
    command_client client = make_client(io_, server_.endpoint());
    client.start();
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    std::size_t ok = 0, busy = 0;
    for (std::size_t i = 0; i < command_client::max_in_flight + 50; ++i)
        client.execute({"PING"}, [&](std::optional<reply>, std::string e) {
            if (e.empty())
                ++ok;
            else if (e == "redis busy")
                ++busy;
        });
    ASSERT_TRUE(run_until(io_, [&] { return ok + busy == command_client::max_in_flight + 50; }));
    EXPECT_GE(busy, 50u);
    EXPECT_GE(ok, command_client::max_in_flight - 1); // an idle PING of our own may hold a slot
}

TEST_F(redis_live, command_client_stop_completes_pending_commands) {
    std::vector<outcome> pending(5);
    {
        command_client client = make_client(io_, server_.endpoint());
        client.start();
        ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
        server_.pause();
        for (auto& o : pending) client.execute({"PING"}, o.capture());
    } // destroyed with commands in flight
    ASSERT_TRUE(run_until(io_, [&] {
        for (auto& o : pending)
            if (!o.done) return false;
        return true;
    }));
    for (auto& o : pending) EXPECT_EQ(o.error, "redis client stopped");
    server_.resume();
}

TEST_F(redis_live, command_client_auth_and_select) {
    test::redis_server secured({"--requirepass", "pw"});
    redis_endpoint ep = secured.endpoint();
    ep.password = "pw";
    ep.db = 3;
    command_client client = make_client(io_, ep);
    client.start();
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    outcome o;
    client.execute({"SET", "k", "v"}, o.capture());
    ASSERT_TRUE(run_until(io_, [&] { return o.done; }));
    EXPECT_EQ(o.error, "");
    outcome info;
    client.execute({"INFO", "keyspace"}, info.capture());
    ASSERT_TRUE(run_until(io_, [&] { return info.done; }));
    EXPECT_NE(info.result->str.find("db3:keys=1"), std::string::npos) << info.result->str;
}

TEST_F(redis_live, require_primary_refuses_a_replica_until_it_is_promoted) {
    command_client admin = make_client(io_, server_.endpoint());
    admin.start();
    ASSERT_TRUE(run_until(io_, [&] { return admin.connected(); }));
    outcome demoted;
    admin.execute({"REPLICAOF", "127.0.0.1", "1"},
                  demoted.capture()); // a primary that is not there
    ASSERT_TRUE(run_until(io_, [&] { return demoted.done; }));
    ASSERT_EQ(demoted.error, "");

    command_client_options opts;
    opts.reconnect_min = 20ms;
    opts.reconnect_max = 100ms;
    opts.require_primary = true;
    command_client picky(io_, server_.endpoint(), opts);
    picky.start();
    ASSERT_TRUE(run_until(io_, [&] { return picky.reconnects() >= 2; }));
    EXPECT_FALSE(picky.connected());
    EXPECT_EQ(picky.last_error(), "not the primary (ROLE says slave)");

    outcome promoted;
    admin.execute({"REPLICAOF", "NO", "ONE"}, promoted.capture());
    ASSERT_TRUE(run_until(io_, [&] { return promoted.done && picky.connected(); }));
}

TEST_F(redis_live, a_link_without_an_address_waits_for_retarget) {
    redis_endpoint nowhere = server_.endpoint();
    nowhere.host.clear();
    command_client client(io_, nowhere, command_client_options{});
    client.start();
    EXPECT_EQ(client.address(), "");
    EXPECT_FALSE(run_until(
        io_, [&] { return client.connected(); }, 200ms));
    client.retarget(server_.endpoint(), true);
    ASSERT_TRUE(run_until(io_, [&] { return client.connected(); }));
    EXPECT_EQ(client.address(), address_of(server_.endpoint()));
}

} // namespace
} // namespace ssegw
