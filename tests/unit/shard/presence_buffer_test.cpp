// A shard's presence buffer: net changes per user over one interval, one report per interval
// however many streams come and go, lifecycle records only when asked for.

#include "ssegw/shard/presence_buffer.hpp"

#include <algorithm>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

namespace ssegw {
namespace {

using namespace std::chrono_literals;

TEST(presence_buffer, reports_net_changes_once_per_interval) {
    boost::asio::io_context ioc;
    std::vector<presence_report> reports;
    presence_buffer buf(ioc, 20ms, false, [&](presence_report r) { reports.push_back(r); });
    const channel_list channels({"user:a", "broadcast"});
    for (int i = 0; i < 100; ++i) buf.opened("a", channels);
    buf.opened("b", channels);
    buf.closed("b", channels, close_reason::client_gone, 0); // cancels out: not reported
    buf.closed("a", channels, close_reason::client_gone, 1);
    ioc.run_for(200ms);
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_EQ(reports[0].deltas, (std::vector<std::pair<std::string, std::int32_t>>{{"a", 99}}));
    EXPECT_TRUE(reports[0].lifecycle.empty());

    // Nothing new: no report, no timer left running.
    ioc.restart();
    EXPECT_EQ(ioc.run_for(50ms), 0u);
    EXPECT_EQ(reports.size(), 1u);
}

TEST(presence_buffer, lifecycle_records_with_topics_reason_and_duration) {
    boost::asio::io_context ioc;
    std::vector<presence_report> reports;
    presence_buffer buf(ioc, 10ms, true, [&](presence_report r) { reports.push_back(r); });
    const channel_list channels({"user:u", "broadcast", "topic:a", "topic:b.c"});
    buf.opened("u", channels);
    buf.closed("u", channels, close_reason::revoked, 42);
    buf.flush();
    ASSERT_EQ(reports.size(), 1u);
    EXPECT_TRUE(reports[0].deltas.empty());
    ASSERT_EQ(reports[0].lifecycle.size(), 2u);
    EXPECT_TRUE(reports[0].lifecycle[0].opened);
    EXPECT_EQ(reports[0].lifecycle[0].topics, "a,b.c");
    EXPECT_FALSE(reports[0].lifecycle[1].opened);
    EXPECT_EQ(reports[0].lifecycle[1].reason, "revoked");
    EXPECT_EQ(reports[0].lifecycle[1].duration_seconds, 42u);
}

} // namespace
} // namespace ssegw
