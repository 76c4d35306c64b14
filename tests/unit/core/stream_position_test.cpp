#include "ssegw/core/stream_position.hpp"

#include <gtest/gtest.h>

#include "ssegw/core/envelope.hpp"

namespace ssegw {
namespace {

TEST(stream_position, round_trips) {
    stream_position p{"6931d2f5a1b2c", 1042, 1764594933};
    EXPECT_EQ(p.format(), "6931d2f5a1b2c.1042.1764594933");
    EXPECT_EQ(stream_position::parse(p.format()), p);
    stream_position zero{"0", 0, 0};
    EXPECT_EQ(stream_position::parse(zero.format()), zero);
    stream_position big{"abcdef", UINT64_MAX, INT64_MAX};
    EXPECT_EQ(stream_position::parse(big.format()), big);
}

TEST(stream_position, rejects_junk_and_foreign_ids) {
    for (std::string_view bad : {"",
                                 "42",
                                 "abc",
                                 "a.1",
                                 "a.1.",
                                 ".1.2",
                                 "a..2",
                                 "A.1.2",
                                 "g.1.2",
                                 "a.-1.2",
                                 "a.1.-2",
                                 "a.01.2",
                                 "a.1.02",
                                 "a.1.2.3",
                                 "a.1.2 ",
                                 " a.1.2",
                                 "a.1.2\n",
                                 "a.18446744073709551616.1",
                                 "a.1.9223372036854775808",
                                 "0123456789abcdef012345678.1.2",
                                 "a.1\r.2",
                                 "1700000000000-0",
                                 "msg-17"})
        EXPECT_FALSE(stream_position::parse(bad)) << bad;
    std::string with_nul("a.1.2\0", 6);
    EXPECT_FALSE(stream_position::parse(with_nul));
}

TEST(envelope, splits_marker_position_and_payload) {
    auto e = parse_envelope("\x1e"
                            "ab.7.100\n{\"data\":1}");
    ASSERT_TRUE(e);
    EXPECT_EQ(e->position.seq, 7u);
    EXPECT_EQ(e->id_text, "ab.7.100");
    EXPECT_EQ(e->payload, "{\"data\":1}");
    auto empty = parse_envelope("\x1e"
                                "ab.7.100\n");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->payload, "");
}

TEST(envelope, plain_messages_and_malformed_envelopes_are_not_envelopes) {
    EXPECT_FALSE(parse_envelope(""));
    EXPECT_FALSE(parse_envelope("{\"data\":1}"));
    EXPECT_FALSE(parse_envelope("\x1e"));
    EXPECT_FALSE(parse_envelope("\x1e"
                                "ab.7.100"));
    EXPECT_FALSE(parse_envelope("\x1e"
                                "junk\npayload"));
}

} // namespace
} // namespace ssegw
