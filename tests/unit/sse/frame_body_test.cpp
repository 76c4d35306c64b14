#include "ssegw/sse/frame_body.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

namespace ssegw {
namespace {

std::string joined(std::string_view payload, std::string_view id) {
    auto body = build_frame_body(payload, 65536);
    EXPECT_TRUE(body.bytes);
    if (!body.bytes) return {};
    return *body.bytes + *make_id_tail(id);
}

TEST(FrameBody, BodyPlusTailIsTheFrameWithThatId) {
    for (std::string_view payload :
         {R"({"event":"task","data":"a\nb","id":"own","retry":5})", R"({"data":{"x":1}})",
          "plain text\nline 2", R"({"event":"id: \u0001","data":1})", "", R"({"data":"id: x"})"}) {
        const auto expected = build_frame(payload, 65536, "2:a.b.c");
        ASSERT_TRUE(expected.bytes) << payload;
        const auto got = joined(payload, "2:a.b.c");
        // Same lines (the id line moves to the end of the block, where EventSource reads it
        // just the same), nothing else.
        auto lines = [](std::string s) {
            std::vector<std::string> out;
            std::size_t p = 0;
            while (p < s.size()) {
                const auto nl = s.find('\n', p);
                out.push_back(s.substr(p, nl - p));
                p = nl + 1;
            }
            std::sort(out.begin(), out.end());
            return out;
        };
        EXPECT_EQ(lines(got), lines(*expected.bytes)) << payload;
        EXPECT_EQ(got.substr(got.size() - 2), "\n\n");
        EXPECT_EQ(got.find("\n\n"), got.size() - 2) << "one block: " << got;
    }
}

TEST(FrameBody, DropsWhatBuildFrameDrops) {
    EXPECT_EQ(build_frame_body(R"({"event":1,"data":1})", 100).dropped,
              drop_reason::bad_event_name);
    EXPECT_EQ(build_frame_body(std::string(200, 'x'), 100).dropped, drop_reason::too_large);
    EXPECT_FALSE(make_id_tail("a\nb"));
}

// The cost of a per-session id: one tail per delivery on top of the shared body. Printed, not
// asserted (a loaded machine must not fail it); docs/architecture.md quotes a run.
TEST(FrameBody, MeasurePerSessionTailCost) {
    const std::string payload = R"({"event":"price","data":{"sym":"ABC","px":101.25}})";
    const std::string id = "2:3kq1.mif3dyib.h,l0k.mif3dy00.2s,1x2y.mif3dz11.1";
    constexpr int sessions = 200000;
    const auto t0 = std::chrono::steady_clock::now();
    std::size_t bytes = 0;
    {
        auto shared = build_frame(payload, 65536, "6931d2f5a1b2c.1042.1764594933");
        for (int i = 0; i < sessions; ++i) {
            frame copy = shared.bytes; // what a shared frame costs a session: a reference
            bytes += copy->size();
        }
    }
    const auto t1 = std::chrono::steady_clock::now();
    std::size_t tail_bytes = 0;
    {
        auto body = build_frame_body(payload, 65536);
        for (int i = 0; i < sessions; ++i) {
            frame copy = body.bytes;
            frame tail = make_id_tail(id);
            tail_bytes += copy->size() + tail->size();
        }
    }
    const auto t2 = std::chrono::steady_clock::now();
    const auto ns = [](auto d) {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count() / double(sessions);
    };
    std::printf("per delivery: shared frame %.1f ns, %zu bytes; body + per-session tail %.1f ns, "
                "%zu bytes (id of %zu bytes)\n",
                ns(t1 - t0), bytes / sessions, ns(t2 - t1), tail_bytes / sessions, id.size());
    EXPECT_GT(tail_bytes, 0u);
}

} // namespace
} // namespace ssegw
