#include "ssegw/redis/resp.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ssegw {
namespace {

using kind = reply::kind;

std::vector<reply> parse_all(resp_reader& reader) {
    std::vector<reply> out;
    while (auto r = reader.next()) out.push_back(std::move(*r));
    return out;
}

std::string bulk(std::string_view s) {
    return "$" + std::to_string(s.size()) + "\r\n" + std::string(s) + "\r\n";
}

TEST(resp_encode, formats_bulk_array) {
    EXPECT_EQ(encode_command({"SET", "k", "value"}),
              "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n");
}

TEST(resp_encode, is_binary_safe_and_allows_empty_args) {
    std::string payload("a\r\nb\0c", 6);
    std::vector<std::string_view> args{"PUBLISH", "", payload};
    EXPECT_EQ(encode_command(args), "*3\r\n$7\r\nPUBLISH\r\n$0\r\n\r\n$6\r\n" + payload + "\r\n");
}

TEST(resp_encode, round_trips_through_reader) {
    std::string big(100000, 'x');
    resp_reader reader;
    reader.feed(encode_command({"PUBLISH", "sse:user:42", big}));
    auto r = reader.next();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->type, kind::array);
    ASSERT_EQ(r->elements.size(), 3u);
    EXPECT_EQ(r->elements[1].str, "sse:user:42");
    EXPECT_EQ(r->elements[2].str, big);
}

TEST(resp_encode, rejects_empty_command) {
    std::vector<std::string_view> none;
    EXPECT_THROW(encode_command(none), std::invalid_argument);
}

// A realistic pub/sub stream: every push kind the subscriber dispatches, with binary payloads.
std::string pubsub_stream() {
    std::string s;
    s += "*3\r\n" + bulk("subscribe") + bulk("sse:user:1") + ":1\r\n";
    s += "*3\r\n" + bulk("message") + bulk("sse:user:1") +
         bulk(std::string("{\"a\":\"\r\n\"}\0", 12));
    s += "*3\r\n" + bulk("psubscribe") + bulk("sse:topic:*") + ":2\r\n";
    s += "*4\r\n" + bulk("pmessage") + bulk("sse:topic:*") + bulk("sse:topic:prices") + bulk("");
    s += "*3\r\n" + bulk("unsubscribe") + bulk("sse:user:1") + ":1\r\n";
    s += "*2\r\n" + bulk("pong") + bulk("");
    s += "+PONG\r\n";
    return s;
}

void check_pubsub(const std::vector<reply>& got) {
    ASSERT_EQ(got.size(), 7u);
    EXPECT_TRUE(got[0].is_push("subscribe"));
    EXPECT_EQ(got[0].elements[1].str, "sse:user:1");
    EXPECT_EQ(got[0].elements[2].type, kind::integer);
    EXPECT_EQ(got[0].elements[2].integer, 1);
    EXPECT_TRUE(got[1].is_push("message"));
    EXPECT_EQ(got[1].elements[2].str, std::string("{\"a\":\"\r\n\"}\0", 12));
    EXPECT_TRUE(got[2].is_push("psubscribe"));
    EXPECT_TRUE(got[3].is_push("pmessage"));
    ASSERT_EQ(got[3].elements.size(), 4u);
    EXPECT_EQ(got[3].elements[2].str, "sse:topic:prices");
    EXPECT_EQ(got[3].elements[3].type, kind::string);
    EXPECT_EQ(got[3].elements[3].str, "");
    EXPECT_TRUE(got[4].is_push("unsubscribe"));
    EXPECT_TRUE(got[5].is_push("pong"));
    EXPECT_EQ(got[6].type, kind::status);
    EXPECT_EQ(got[6].str, "PONG");
}

TEST(resp_reader, parses_pubsub_arrays_in_one_piece) {
    resp_reader reader;
    reader.feed(pubsub_stream());
    check_pubsub(parse_all(reader));
    EXPECT_FALSE(reader.next());
}

TEST(resp_reader, parses_pubsub_arrays_split_at_every_byte_boundary) {
    const std::string s = pubsub_stream();
    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
        SCOPED_TRACE("cut at " + std::to_string(cut));
        resp_reader reader;
        std::vector<reply> got;
        reader.feed(std::string_view(s).substr(0, cut));
        for (auto& r : parse_all(reader)) got.push_back(std::move(r));
        reader.feed(std::string_view(s).substr(cut));
        for (auto& r : parse_all(reader)) got.push_back(std::move(r));
        check_pubsub(got);
    }
}

TEST(resp_reader, parses_byte_by_byte) {
    const std::string s = pubsub_stream();
    resp_reader reader;
    std::vector<reply> got;
    for (char c : s) {
        reader.feed(std::string_view(&c, 1));
        for (auto& r : parse_all(reader)) got.push_back(std::move(r));
    }
    check_pubsub(got);
}

TEST(resp_reader, parses_scalars_and_nils) {
    resp_reader reader;
    reader.feed("$-1\r\n*-1\r\n:-42\r\n:9223372036854775807\r\n-ERR unknown "
                "command\r\n+OK\r\n*0\r\n$0\r\n\r\n");
    auto got = parse_all(reader);
    ASSERT_EQ(got.size(), 8u);
    EXPECT_EQ(got[0].type, kind::nil);
    EXPECT_EQ(got[1].type, kind::nil);
    EXPECT_EQ(got[2].type, kind::integer);
    EXPECT_EQ(got[2].integer, -42);
    EXPECT_EQ(got[3].integer, 9223372036854775807LL);
    EXPECT_EQ(got[4].type, kind::error);
    EXPECT_EQ(got[4].str, "ERR unknown command");
    EXPECT_EQ(got[5].type, kind::status);
    EXPECT_EQ(got[5].str, "OK");
    EXPECT_EQ(got[6].type, kind::array);
    EXPECT_TRUE(got[6].elements.empty());
    EXPECT_EQ(got[7].type, kind::string);
    EXPECT_EQ(got[7].str, "");
}

TEST(resp_reader, parses_nested_arrays_like_xrange) {
    resp_reader reader;
    reader.feed("*2\r\n*2\r\n" + bulk("1-0") + "*2\r\n" + bulk("data") + bulk("x") + "*2\r\n" +
                bulk("2-0") + "*-1\r\n");
    auto r = reader.next();
    ASSERT_TRUE(r);
    ASSERT_EQ(r->elements.size(), 2u);
    EXPECT_EQ(r->elements[0].elements[0].str, "1-0");
    EXPECT_EQ(r->elements[0].elements[1].elements[1].str, "x");
    EXPECT_EQ(r->elements[1].elements[1].type, kind::nil);
}

TEST(resp_reader, malformed_input_throws_and_stays_failed) {
    for (std::string bad : {"?what\r\n", ":12a\r\n", "$abc\r\n", "*x\r\n", "*-2\r\n", "$-5\r\n"}) {
        SCOPED_TRACE(bad);
        resp_reader reader;
        reader.feed(bad);
        EXPECT_THROW(reader.next(), resp_error);
        EXPECT_THROW(reader.next(), resp_error);
        reader.reset();
        reader.feed("+OK\r\n");
        EXPECT_TRUE(reader.next());
    }
}

TEST(resp_reader, oversized_bulk_length_throws_before_the_data_arrives) {
    resp_reader reader;
    reader.feed("$" + std::to_string(max_reply_bytes + 1) + "\r\n");
    EXPECT_THROW(reader.next(), resp_error);

    resp_reader partial; // even before the header's CRLF
    partial.feed("*2\r\n$1\r\na\r\n$99999999999");
    EXPECT_THROW(partial.next(), resp_error);

    resp_reader at_limit; // the limit itself is fine while waiting
    at_limit.feed("$" + std::to_string(max_reply_bytes) + "\r\n");
    EXPECT_FALSE(at_limit.next());
}

TEST(resp_reader, unterminated_line_beyond_the_limit_throws) {
    resp_reader reader;
    reader.feed("+");
    std::string chunk(1 << 20, 'a');
    bool threw = false;
    for (int i = 0; i < 70 && !threw; ++i) {
        reader.feed(chunk);
        try {
            EXPECT_FALSE(reader.next());
        } catch (const resp_error&) {
            threw = true;
        }
    }
    EXPECT_TRUE(threw);
}

TEST(resp_reader, huge_array_count_throws) {
    resp_reader reader;
    reader.feed("*" + std::to_string(max_reply_elements + 1) + "\r\n");
    EXPECT_THROW(reader.next(), resp_error);
    resp_reader overflow;
    overflow.feed("*4294967297\r\n");
    EXPECT_THROW(overflow.next(), resp_error);
}

TEST(resp_reader, deep_nesting_throws) {
    std::string s;
    for (int i = 0; i < 12; ++i) s += "*1\r\n";
    s += ":1\r\n";
    resp_reader reader;
    reader.feed(s);
    EXPECT_THROW(reader.next(), resp_error);
}

TEST(resp_reader, many_replies_beyond_the_limit_in_total_are_fine) {
    // The size bound is per reply, not per connection.
    resp_reader reader;
    std::string payload(1 << 20, 'p');
    std::string one = "*3\r\n" + bulk("message") + bulk("c") + bulk(payload);
    for (int i = 0; i < 80; ++i) {
        reader.feed(one);
        auto r = reader.next();
        ASSERT_TRUE(r);
        EXPECT_EQ(r->elements[2].str.size(), payload.size());
    }
}

} // namespace
} // namespace ssegw
