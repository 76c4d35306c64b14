#include "ssegw/sse/simple_envelope.hpp"

#include "ssegw/sse/frame.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ssegw {
namespace {

TEST(SimpleEnvelope, ReadsTheCommonShapes) {
    auto env = read_simple_envelope(R"({"event":"note","id":"42","retry":1500,"data":"hello"})");
    ASSERT_TRUE(env);
    EXPECT_EQ(env->event, "note");
    EXPECT_EQ(env->id, "42");
    EXPECT_EQ(env->retry, 1500u);
    EXPECT_EQ(env->data, "hello");

    env = read_simple_envelope(" \t{ \"data\" :\r\n \"x y\" }\n");
    ASSERT_TRUE(env);
    EXPECT_FALSE(env->event);
    EXPECT_FALSE(env->id);
    EXPECT_FALSE(env->retry);
    EXPECT_EQ(env->data, "x y");

    env = read_simple_envelope(R"({"data":"","retry":0,"event":""})");
    ASSERT_TRUE(env);
    EXPECT_EQ(env->retry, 0u);
    EXPECT_EQ(env->event, "");
    EXPECT_EQ(read_simple_envelope(R"({"data":"a","retry":9999999999999999999})")->retry,
              9999999999999999999u);
}

TEST(SimpleEnvelope, LeavesEverythingElseToTheFullParser) {
    for (const char* payload : {
             "",
             "hello",
             "{}",
             R"({"event":"x"})",           // no data
             R"({"data":"a","data":"b"})", // duplicate
             R"({"data":"a","event":"x","event":"y"})",
             R"({"data":"a","extra":1})", // another member
             R"({"data":null})",
             R"({"data":{"k":1}})", // not a string
             R"({"data":42})",
             R"({"data":"a\nb"})",         // an escape
             "{\"data\":\"caf\xc3\xa9\"}", // multi-byte UTF-8
             "{\"data\":\"a\tb\"}",        // a control character
             R"({"data":"a","retry":-1})",
             R"({"data":"a","retry":01})",
             R"({"data":"a","retry":1.5})",
             R"({"data":"a","retry":1e3})",
             R"({"data":"a","retry":10000000000000000000})", // 20 digits
             R"({"data":"a","retry":"1"})",
             R"({"data":"a","id":7})",
             R"({"data":"a"} trailing)",
             R"({"data":"a",})",
             R"({"data":"a")",
             R"({"data":"a)",
             R"(["data","a"])",
         })
        EXPECT_FALSE(read_simple_envelope(payload)) << payload;
}

// Whatever it reads, build_frame turns into the bytes nlohmann's parse gives (the fuzzer checks
// the same on random input).
TEST(SimpleEnvelope, FramesAreThoseOfTheFullParse) {
    const std::vector<std::string> payloads = {
        R"({"event":"note","id":"42","retry":1500,"data":"hello"})",
        R"({"data":"x"})",
        R"({"event":"","id":"","data":""})",
        R"({ "retry" : 0 , "data" : "a b" })",
        R"({"id":"own","data":"forced over"})",
    };
    for (const auto& p : payloads) {
        ASSERT_TRUE(read_simple_envelope(p)) << p;
        for (const std::string forced : {"", "7-9"}) {
            const auto fast = build_frame(p, 65536, forced);
            const auto full = build_frame_fully_parsed(p, 65536, forced);
            ASSERT_TRUE(fast.bytes && full.bytes) << p;
            EXPECT_EQ(*fast.bytes, *full.bytes) << p;
            EXPECT_EQ(fast.has_id, full.has_id) << p;
        }
    }
}

} // namespace
} // namespace ssegw
