// The presence library: its commands and replies, and its Lua run against a real redis-server
// (two instances racing, the offline grace, a dead instance swept once, absolute counts that a
// repeated call cannot double).

#include "redis_fixture.hpp"

#include "ssegw/redis/presence_functions.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace ssegw {
namespace {

using namespace std::chrono_literals;

TEST(presence_functions, keys_and_commands) {
    EXPECT_EQ(presence_stream_key("sse:"), "sse:presence");
    EXPECT_EQ(lifecycle_stream_key("app:"), "app:lifecycle");
    presence_apply_args a{"gw-1", 20000, 5000, 100, true};
    EXPECT_EQ(presence_apply_command("sse:", a, {{"42", 2}, {"7", 0}}),
              (std::vector<std::string>{"FCALL", "ssegw_presence_apply", "1", "sse:presence",
                                        "gw-1", "20000", "5000", "100", "1", "42", "2", "7", "0"}));
    EXPECT_EQ(presence_get_command("sse:", {"a", "b"}),
              (std::vector<std::string>{"FCALL_RO", "ssegw_presence_get", "1", "sse:presence", "a",
                                        "b"}));
    EXPECT_EQ(lifecycle_add_command("sse:", 10, "gw", {{false, "u", "a,b", "client_gone", 3}}),
              (std::vector<std::string>{"FCALL", "ssegw_lifecycle_add", "1", "sse:lifecycle", "10",
                                        "gw", "closed", "u", "a,b", "client_gone", "3"}));
    EXPECT_NE(presence_library_source().find(presence_library_name), std::string_view::npos);
}

reply integer(long long v) {
    reply r;
    r.type = reply::kind::integer;
    r.integer = v;
    return r;
}
reply array(std::vector<reply> e) {
    reply r;
    r.type = reply::kind::array;
    r.elements = std::move(e);
    return r;
}

TEST(presence_functions, replies_of_the_wrong_shape_are_refused) {
    auto ok = parse_presence_apply_reply(
        array({integer(1), integer(2), integer(3), integer(4), integer(1)}));
    ASSERT_TRUE(ok);
    EXPECT_TRUE(ok->was_known);
    EXPECT_EQ(ok->online, 2u);
    EXPECT_EQ(ok->offline, 3u);
    EXPECT_EQ(ok->instances_swept, 4u);
    EXPECT_TRUE(ok->more);
    EXPECT_FALSE(
        parse_presence_apply_reply(array({integer(1), integer(2), integer(3), integer(4)})));
    EXPECT_FALSE(parse_presence_apply_reply(
        array({integer(1), integer(-2), integer(3), integer(4), integer(0)})));
    EXPECT_FALSE(parse_presence_apply_reply(integer(1)));

    auto got = parse_presence_get_reply(array({array({integer(3), integer(2)})}), 1);
    ASSERT_TRUE(got);
    EXPECT_EQ((*got)[0].connections, 3u);
    EXPECT_EQ((*got)[0].instances, 2u);
    EXPECT_FALSE(parse_presence_get_reply(array({array({integer(3), integer(2)})}), 2));
    EXPECT_FALSE(parse_presence_get_reply(array({array({integer(3)})}), 1));
    EXPECT_FALSE(parse_presence_get_reply(array({integer(3)}), 1));
}

class presence_lua : public ::testing::Test {
protected:
    void SetUp() override { test::run_command(server_.port(), presence_load_command()); }

    presence_apply_result apply(const std::string& instance,
                                std::vector<std::pair<std::string, std::uint32_t>> counts,
                                bool reset = false, std::uint32_t ttl_ms = 20000,
                                std::uint32_t grace_ms = 5000) {
        const auto r = test::run_command(
            server_.port(),
            presence_apply_command("sse:", {instance, ttl_ms, grace_ms, 1000, reset}, counts));
        auto parsed = parse_presence_apply_reply(r);
        EXPECT_TRUE(parsed) << r.str;
        return parsed.value_or(presence_apply_result{});
    }
    user_presence get(const std::string& user) {
        auto r = parse_presence_get_reply(
            test::run_command(server_.port(), presence_get_command("sse:", {user})), 1);
        EXPECT_TRUE(r);
        return r ? r->front() : user_presence{};
    }
    /// The (type, user) of each entry of sse:presence, in order.
    std::vector<std::pair<std::string, std::string>> transitions() {
        std::vector<std::pair<std::string, std::string>> out;
        const auto r = test::run_command(server_.port(), {"XRANGE", "sse:presence", "-", "+"});
        for (const auto& entry : r.elements) {
            const auto& f = entry.elements.at(1).elements;
            out.emplace_back(f.at(1).str, f.at(3).str);
        }
        return out;
    }

    test::redis_server server_;
};

TEST_F(presence_lua, counts_across_instances_and_one_online_however_many_race) {
    EXPECT_FALSE(apply("a", {{"42", 1}}).was_known);
    EXPECT_TRUE(apply("a", {{"42", 2}}).was_known);
    EXPECT_EQ(apply("b", {{"42", 1}}).online, 0u); // already online through a
    const auto p = get("42");
    EXPECT_EQ(p.connections, 3u);
    EXPECT_EQ(p.instances, 2u);
    EXPECT_EQ(get("nobody").connections, 0u);
    EXPECT_EQ(transitions(), (std::vector<std::pair<std::string, std::string>>{{"online", "42"}}));
}

TEST_F(presence_lua, absolute_counts_make_a_repeated_call_harmless) {
    apply("a", {{"42", 2}});
    apply("a", {{"42", 2}});
    EXPECT_EQ(get("42").connections, 2u);
}

TEST_F(presence_lua, offline_only_after_the_grace_and_not_when_back_in_time) {
    apply("a", {{"42", 1}}, false, 20000, 300);
    apply("a", {{"42", 0}}, false, 20000, 300);
    apply("b", {{"42", 1}}, false, 20000, 300); // back within the grace, elsewhere
    std::this_thread::sleep_for(400ms);
    apply("a", {}, false, 20000, 300);
    EXPECT_EQ(transitions().size(), 1u);
    apply("b", {{"42", 0}}, false, 20000, 300);
    apply("b", {}, false, 20000, 300);
    EXPECT_EQ(transitions().size(), 1u); // still within the grace
    std::this_thread::sleep_for(400ms);
    EXPECT_EQ(apply("b", {}, false, 20000, 300).offline, 1u);
    EXPECT_EQ(apply("a", {}, false, 20000, 300).offline, 0u); // written once
    EXPECT_EQ(transitions(), (std::vector<std::pair<std::string, std::string>>{{"online", "42"},
                                                                               {"offline", "42"}}));
}

TEST_F(presence_lua, a_dead_instance_stops_counting_at_its_deadline_and_is_swept_once) {
    apply("dead", {{"1", 1}, {"2", 3}}, true, 300, 300);
    apply("live", {{"2", 1}}, true, 20000, 300);
    EXPECT_EQ(get("2").connections, 4u);
    std::this_thread::sleep_for(400ms);
    // Not swept yet, but not counted any more.
    EXPECT_EQ(get("1").connections, 0u);
    EXPECT_EQ(get("2").connections, 1u);
    const auto swept = apply("live", {}, false, 20000, 300);
    EXPECT_EQ(swept.instances_swept, 1u);
    EXPECT_EQ(swept.offline, 0u); // user 1: after the grace, in case "dead" only lost Redis
    EXPECT_EQ(apply("live", {}, false, 20000, 300).instances_swept, 0u);
    std::this_thread::sleep_for(400ms);
    EXPECT_EQ(apply("live", {}, false, 20000, 300).offline, 1u);
    EXPECT_EQ(transitions(), (std::vector<std::pair<std::string, std::string>>{
                                 {"online", "1"}, {"online", "2"}, {"offline", "1"}}));
    // The dead instance's keys are gone; coming back it is told it was unknown.
    EXPECT_EQ(test::run_command(server_.port(), {"EXISTS", "sse:{sse:presence}:i:dead"}).integer,
              0);
    EXPECT_FALSE(apply("dead", {}).was_known);
}

TEST_F(presence_lua, a_backlog_of_offlines_is_written_in_bounded_calls_that_ask_for_more) {
    std::vector<std::pair<std::string, std::uint32_t>> on, off;
    for (int i = 0; i < 600; ++i) {
        on.emplace_back("b" + std::to_string(i), 1);
        off.emplace_back("b" + std::to_string(i), 0);
    }
    apply("a", on, false, 20000, 100);
    apply("a", off, false, 20000, 100);
    std::this_thread::sleep_for(200ms);
    std::vector<std::uint64_t> written;
    for (int i = 0; i < 10; ++i) {
        const auto r = apply("a", {}, false, 20000, 100);
        written.push_back(r.offline);
        if (!r.more) break;
    }
    EXPECT_EQ(written, (std::vector<std::uint64_t>{250, 250, 100}));
}

TEST_F(presence_lua, an_instance_swept_after_an_outage_comes_back_within_the_grace_no_flap) {
    apply("slow", {{"u", 1}}, true, 300, 1000);
    apply("other", {}, true, 20000, 1000);
    std::this_thread::sleep_for(400ms); // "slow" could not reach Redis for longer than its TTL
    EXPECT_EQ(apply("other", {}, false, 20000, 1000).instances_swept, 1u);
    const auto back = apply("slow", {{"u", 1}}, true, 300, 1000); // its full report
    EXPECT_FALSE(back.was_known);
    std::this_thread::sleep_for(1100ms);
    EXPECT_EQ(apply("slow", {}, false, 20000, 1000).offline, 0u);
    EXPECT_EQ(transitions(), (std::vector<std::pair<std::string, std::string>>{{"online", "u"}}));
}

TEST_F(presence_lua, a_reset_replaces_what_the_instance_had) {
    apply("a", {{"1", 1}, {"2", 1}});
    apply("a", {{"2", 5}}, true);
    EXPECT_EQ(get("1").connections, 0u);
    EXPECT_EQ(get("2").connections, 5u);
}

TEST_F(presence_lua, bad_calls_are_errors_not_damage) {
    auto r = test::run_command(server_.port(), {"FCALL", "ssegw_presence_apply", "1",
                                                "sse:elsewhere", "a", "1", "1", "1", "0"});
    EXPECT_EQ(r.type, reply::kind::error);
    r = test::run_command(server_.port(), {"FCALL", "ssegw_presence_apply", "1", "sse:presence",
                                           "a", "1", "1", "1", "0", "user-without-count"});
    EXPECT_EQ(r.type, reply::kind::error);
    r = test::run_command(server_.port(), {"FCALL", "ssegw_presence_apply", "1", "sse:presence",
                                           "a", "1", "1", "1", "0", "u", "NaN-count"});
    EXPECT_EQ(r.type, reply::kind::error);
    EXPECT_EQ(get("u").connections, 0u);
}

TEST_F(presence_lua, lifecycle_entries) {
    const auto n = test::run_command(
        server_.port(),
        lifecycle_add_command("sse:", 100, "gw",
                              {{true, "u", "a,b", "", 0}, {false, "u", "a,b", "client_gone", 7}}));
    EXPECT_EQ(n.integer, 2);
    const auto r = test::run_command(server_.port(), {"XRANGE", "sse:lifecycle", "-", "+"});
    ASSERT_EQ(r.elements.size(), 2u);
    const auto& closed = r.elements[1].elements.at(1).elements;
    std::vector<std::string> fields;
    for (const auto& f : closed) fields.push_back(f.str);
    EXPECT_EQ(fields.at(1), "closed");
    EXPECT_EQ(fields.at(5), "gw");
    EXPECT_EQ(fields.at(7), "a,b");
    EXPECT_EQ(fields.at(11), "client_gone");
    EXPECT_EQ(fields.at(13), "7");
}

} // namespace
} // namespace ssegw
