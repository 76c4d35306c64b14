// Fuzzes the subscribe endpoint's request-target parsing: split_target, percent_decode,
// parse_query and parse_subscribe_request. The input is a request target as sent on the wire
// ("/events?topic=a&token=..."); a target without '?' is also tried as a bare query.

#include "fuzz_check.hpp"

#include "ssegw/core/channel.hpp"
#include "ssegw/core/query_string.hpp"
#include "ssegw/http/subscribe_request.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

bool is_view_into(std::string_view part, std::string_view whole) {
    return part.empty() || (part.data() >= whole.data() &&
                            part.data() + part.size() <= whole.data() + whole.size());
}

void check_decode(std::string_view in, bool plus_as_space) {
    const auto out = ssegw::percent_decode(in, plus_as_space);
    if (!out) return;
    // Decoding only ever shrinks (%XX -> 1 byte, '+' -> ' ') and never yields a NUL.
    SSEGW_FUZZ_CHECK(out->size() <= in.size());
    SSEGW_FUZZ_CHECK(out->find('\0') == std::string::npos);
    if (in.find('%') == std::string_view::npos &&
        (!plus_as_space || in.find('+') == std::string_view::npos))
        SSEGW_FUZZ_CHECK(*out == in);
}

void check_query(std::string_view query) {
    constexpr std::size_t small_max = 4;
    const auto all = ssegw::parse_query(query);
    const auto few = ssegw::parse_query(query, small_max);
    if (few) {
        SSEGW_FUZZ_CHECK(few->size() <= small_max);
        // The limit only refuses; it never changes what is parsed.
        SSEGW_FUZZ_CHECK(all.has_value() && all->size() == few->size());
    }
    if (all) {
        SSEGW_FUZZ_CHECK(all->size() <= 256);
        for (const auto& p : *all) {
            SSEGW_FUZZ_CHECK(p.key.find('\0') == std::string::npos);
            SSEGW_FUZZ_CHECK(p.value.find('\0') == std::string::npos);
        }
    }

    for (std::size_t max_topics : {std::size_t{0}, std::size_t{2}, std::size_t{32}}) {
        ssegw::subscribe_request_error error;
        const auto req = ssegw::parse_subscribe_request(query, "token", max_topics, error);
        if (!req) {
            SSEGW_FUZZ_CHECK(!error.reason.empty());
            continue;
        }
        SSEGW_FUZZ_CHECK(all.has_value());
        SSEGW_FUZZ_CHECK(req->topics.size() <= max_topics);
        for (std::size_t i = 0; i < req->topics.size(); ++i) {
            const auto& topic = req->topics[i];
            SSEGW_FUZZ_CHECK(ssegw::is_valid_name(topic));
            SSEGW_FUZZ_CHECK(std::find(req->topics.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                                       req->topics.end(), topic) == req->topics.end());
            // Every topic was asked for by a `topic=` parameter.
            SSEGW_FUZZ_CHECK(
                std::any_of(all->begin(), all->end(), [&](const ssegw::query_param& p) {
                    return p.key == "topic" && p.value == topic;
                }));
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view target(reinterpret_cast<const char*>(data), size);

    const auto parts = ssegw::split_target(target);
    SSEGW_FUZZ_CHECK(is_view_into(parts.path, target) && is_view_into(parts.query, target));
    SSEGW_FUZZ_CHECK(target.substr(0, parts.path.size()) == parts.path);
    SSEGW_FUZZ_CHECK(parts.path.find_first_of("?#") == std::string_view::npos);
    SSEGW_FUZZ_CHECK(parts.query.find('#') == std::string_view::npos);

    check_decode(target, true);
    check_decode(target, false);
    check_query(parts.query);
    if (target.find('?') == std::string_view::npos) check_query(target);
    return 0;
}
