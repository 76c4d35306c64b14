#include "ssegw/sse/frame.hpp"

#include <gtest/gtest.h>

#include <string>

namespace ssegw {
namespace {

constexpr std::size_t big = 64 * 1024;

std::string text_of(std::string_view payload, std::string_view forced_id = {},
                    std::size_t max = big) {
    auto r = build_frame(payload, max, forced_id);
    EXPECT_FALSE(r.dropped) << to_string(*r.dropped);
    EXPECT_TRUE(r.bytes);
    return r.bytes ? *r.bytes : std::string();
}

std::optional<drop_reason> drop_of(std::string_view payload, std::string_view forced_id = {},
                                   std::size_t max = big) {
    auto r = build_frame(payload, max, forced_id);
    EXPECT_EQ(r.dropped.has_value(), r.bytes == nullptr);
    return r.dropped;
}

TEST(frame, object_with_string_data_and_event) {
    EXPECT_EQ(text_of(R"({"event":"task-updated","data":"hello"})"),
              "event: task-updated\ndata: hello\n\n");
    EXPECT_EQ(text_of(R"({"data":"hello"})"), "data: hello\n\n");
}

TEST(frame, field_order_is_event_id_retry_data) {
    EXPECT_EQ(text_of(R"({"data":"x","retry":1500,"id":"7","event":"e"})"),
              "event: e\nid: 7\nretry: 1500\ndata: x\n\n");
}

TEST(frame, multi_line_string_data) {
    EXPECT_EQ(text_of(R"({"data":"a\nb\nc"})"), "data: a\ndata: b\ndata: c\n\n");
    EXPECT_EQ(text_of(R"({"data":"a\r\nb"})"), "data: a\ndata: b\n\n");
    EXPECT_EQ(text_of(R"({"data":"a\rb"})"), "data: a\ndata: b\n\n");
    EXPECT_EQ(text_of(R"({"data":"a\r\rb"})"), "data: a\ndata: \ndata: b\n\n");
    EXPECT_EQ(text_of(R"({"data":"a\n\nb"})"), "data: a\ndata: \ndata: b\n\n");
}

TEST(frame, trailing_newline_keeps_an_empty_last_line) {
    // EventSource joins data lines with LF, so this round-trips to "a\n".
    EXPECT_EQ(text_of(R"({"data":"a\n"})"), "data: a\ndata: \n\n");
    EXPECT_EQ(text_of(R"({"data":"a\r\n"})"), "data: a\ndata: \n\n");
}

TEST(frame, empty_data_string) { EXPECT_EQ(text_of(R"({"data":""})"), "data: \n\n"); }

TEST(frame, leading_spaces_in_data_survive) {
    EXPECT_EQ(text_of(R"({"data":"  indented"})"), "data:   indented\n\n");
}

TEST(frame, non_string_data_is_compact_json) {
    EXPECT_EQ(text_of(R"({"data": { "a" : 1, "b" : [1, 2, "x\ny"] }})"),
              "data: {\"a\":1,\"b\":[1,2,\"x\\ny\"]}\n\n");
    EXPECT_EQ(text_of(R"({"data":[1, 2 ,3]})"), "data: [1,2,3]\n\n");
    EXPECT_EQ(text_of(R"({"data":42})"), "data: 42\n\n");
    EXPECT_EQ(text_of(R"({"data":-1.5})"), "data: -1.5\n\n");
    EXPECT_EQ(text_of(R"({"data":true})"), "data: true\n\n");
    EXPECT_EQ(text_of(R"({"data":null})"), "data: null\n\n");
}

TEST(frame, numeric_and_string_ids) {
    EXPECT_EQ(text_of(R"({"id":42,"data":"x"})"), "id: 42\ndata: x\n\n");
    EXPECT_EQ(text_of(R"({"id":"1700000000000-0","data":"x"})"),
              "id: 1700000000000-0\ndata: x\n\n");
    // An empty id is meaningful to EventSource (it resets lastEventId), so it is kept.
    EXPECT_EQ(text_of(R"({"id":"","data":"x"})"), "id: \ndata: x\n\n");
}

TEST(frame, retry) {
    EXPECT_EQ(text_of(R"({"retry":0,"data":"x"})"), "retry: 0\ndata: x\n\n");
    EXPECT_EQ(text_of(R"({"retry":2000,"data":"x"})"), "retry: 2000\ndata: x\n\n");
}

TEST(frame, null_fields_count_as_absent) {
    EXPECT_EQ(text_of(R"({"event":null,"id":null,"retry":null,"data":"x"})"), "data: x\n\n");
}

TEST(frame, empty_event_name_is_omitted) {
    EXPECT_EQ(text_of(R"({"event":"","data":"x"})"), "data: x\n\n");
}

TEST(frame, other_members_are_ignored) {
    EXPECT_EQ(text_of(R"({"channel":"user:42","data":"x"})"), "data: x\n\n");
}

TEST(frame, non_json_text_is_sent_verbatim) {
    EXPECT_EQ(text_of("hello world"), "data: hello world\n\n");
    EXPECT_EQ(text_of("line1\nline2\r\nline3\rline4"),
              "data: line1\ndata: line2\ndata: line3\ndata: line4\n\n");
    EXPECT_EQ(text_of(""), "data: \n\n");
    EXPECT_EQ(text_of("{not json"), "data: {not json\n\n");
}

TEST(frame, json_that_is_not_an_event_object_is_sent_verbatim) {
    EXPECT_EQ(text_of(R"([1, {"data":"x"}])"), "data: [1, {\"data\":\"x\"}]\n\n");
    EXPECT_EQ(text_of("42"), "data: 42\n\n");
    EXPECT_EQ(text_of(R"("str")"), "data: \"str\"\n\n");
    // An object without "data" is sent whole, untouched (not re-serialised), even with "event".
    EXPECT_EQ(text_of(R"({"event":"e", "x": 1})"), "data: {\"event\":\"e\", \"x\": 1}\n\n");
    EXPECT_EQ(text_of("{\n  \"x\": 1\n}"), "data: {\ndata:   \"x\": 1\ndata: }\n\n");
}

TEST(frame, deeply_nested_json_is_sent_verbatim_not_parsed) {
    std::string deep = R"({"data":)";
    for (int i = 0; i < 10000; ++i) deep += '[';
    for (int i = 0; i < 10000; ++i) deep += ']';
    deep += '}';
    EXPECT_EQ(text_of(deep), "data: " + deep + "\n\n");

    std::string ok = R"({"data":)";
    for (std::size_t i = 0; i + 1 < max_payload_json_depth; ++i) ok += '[';
    for (std::size_t i = 0; i + 1 < max_payload_json_depth; ++i) ok += ']';
    ok += '}';
    EXPECT_EQ(text_of(ok), "data: " + ok.substr(8, ok.size() - 9) + "\n\n");
}

TEST(frame, brackets_inside_strings_do_not_count_as_nesting) {
    std::string many(1000, '[');
    EXPECT_EQ(text_of(R"({"data":")" + many + R"("})"), "data: " + many + "\n\n");
}

TEST(frame, drop_reasons) {
    EXPECT_EQ(drop_of(R"({"event":"a\nb","data":"x"})"), drop_reason::bad_event_name);
    EXPECT_EQ(drop_of(R"({"event":"a\rb","data":"x"})"), drop_reason::bad_event_name);
    EXPECT_EQ(drop_of(R"({"event":"a\u0000b","data":"x"})"), drop_reason::bad_event_name);
    EXPECT_EQ(drop_of(R"({"event":5,"data":"x"})"), drop_reason::bad_event_name);
    EXPECT_EQ(drop_of(R"({"id":"1\n2","data":"x"})"), drop_reason::bad_id);
    EXPECT_EQ(drop_of(R"({"id":"1\r2","data":"x"})"), drop_reason::bad_id);
    EXPECT_EQ(drop_of(R"({"id":"1\u00002","data":"x"})"), drop_reason::bad_id);
    EXPECT_EQ(drop_of(R"({"id":{"a":1},"data":"x"})"), drop_reason::bad_id);
    EXPECT_EQ(drop_of(R"({"id":true,"data":"x"})"), drop_reason::bad_id);
    EXPECT_EQ(drop_of(R"({"retry":-1,"data":"x"})"), drop_reason::bad_retry);
    EXPECT_EQ(drop_of(R"({"retry":1.5,"data":"x"})"), drop_reason::bad_retry);
    EXPECT_EQ(drop_of(R"({"retry":"100","data":"x"})"), drop_reason::bad_retry);
    EXPECT_EQ(drop_of("0123456789", {}, 9), drop_reason::too_large);
    EXPECT_EQ(drop_of("x", std::string_view("a\nb")), drop_reason::bad_id);
}

TEST(frame, drop_reason_names) {
    EXPECT_EQ(to_string(drop_reason::too_large), "too_large");
    EXPECT_EQ(to_string(drop_reason::bad_event_name), "bad_event_name");
    EXPECT_EQ(to_string(drop_reason::bad_id), "bad_id");
    EXPECT_EQ(to_string(drop_reason::bad_retry), "bad_retry");
}

TEST(frame, size_limit_is_inclusive) {
    const std::string payload(100, 'x');
    EXPECT_EQ(text_of(payload, {}, 100), "data: " + payload + "\n\n");
    EXPECT_EQ(drop_of(payload, {}, 99), drop_reason::too_large);
    EXPECT_EQ(drop_of(R"({"data":"x"})", {}, 11), drop_reason::too_large);
    EXPECT_EQ(text_of(R"({"data":"x"})", {}, 12), "data: x\n\n");
}

TEST(frame, forced_id_overrides_the_payload_id) {
    EXPECT_EQ(text_of(R"({"id":"mine","data":"x"})", "p1"), "id: p1\ndata: x\n\n");
    EXPECT_EQ(text_of(R"({"data":"x"})", "p1"), "id: p1\ndata: x\n\n");
    EXPECT_EQ(text_of("plain", "p1"), "id: p1\ndata: plain\n\n");
    // The payload's id is replaced, but a bad one still drops the payload: the same rules
    // hold whichever way it was published.
    EXPECT_EQ(drop_of(R"({"id":"a\nb","data":"x"})", "p1"), drop_reason::bad_id);
}

TEST(frame, unicode_passes_through_untouched) {
    EXPECT_EQ(text_of(R"({"event":"ünï","data":"héllo 世界 🎉"})"),
              "event: ünï\ndata: héllo 世界 🎉\n\n");
    EXPECT_EQ(text_of(R"({"data":"\u00e9\ud83c\udf89"})"), "data: é🎉\n\n");
    EXPECT_EQ(text_of(R"({"data":{"k":"é"}})"), "data: {\"k\":\"é\"}\n\n");
    EXPECT_EQ(text_of("plain ünïcödé"), "data: plain ünïcödé\n\n");
}

TEST(frame, block_is_allocated_to_its_exact_size) {
    auto r = build_frame(R"({"event":"e","id":3,"retry":10,"data":"a\r\nb\rc\n"})", big);
    ASSERT_TRUE(r.bytes);
    EXPECT_EQ(*r.bytes, "event: e\nid: 3\nretry: 10\ndata: a\ndata: b\ndata: c\ndata: \n\n");
    auto s = build_frame(std::string(500, 'z'), big);
    ASSERT_TRUE(s.bytes);
    EXPECT_EQ(s.bytes->size(), 500u + 8u);
    EXPECT_LE(s.bytes->capacity(), s.bytes->size() + 16); // no growth doubling
}

TEST(frame, comment_frame) {
    EXPECT_EQ(*make_comment_frame("hb"), ": hb\n\n");
    EXPECT_EQ(*make_comment_frame(""), ": \n\n");
    EXPECT_EQ(*make_comment_frame("a\ndata: x"), ": a\n: data: x\n\n");
}

TEST(frame, retry_frame) {
    EXPECT_EQ(*make_retry_frame(2000), "retry: 2000\n\n");
    EXPECT_EQ(*make_retry_frame(0), "retry: 0\n\n");
    EXPECT_EQ(*make_retry_frame(4294967295u), "retry: 4294967295\n\n");
}

TEST(frame, position_frame) {
    // A named event with an empty data line: clients that ignore data-less blocks keep the id.
    EXPECT_EQ(*make_position_frame("abc-1"), "event: ssegw-position\nid: abc-1\ndata:\n\n");
    EXPECT_EQ(*make_position_frame(""), "event: ssegw-position\nid: \ndata:\n\n");
    EXPECT_EQ(make_position_frame("a\nb"), nullptr);
    EXPECT_EQ(make_position_frame(std::string_view("a\0b", 3)), nullptr);
}

} // namespace
} // namespace ssegw
