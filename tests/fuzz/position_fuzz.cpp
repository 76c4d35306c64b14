// Fuzzes the resume-position text form (what Last-Event-ID carries back from any client) and the
// pub/sub envelope around history events. A position has exactly one spelling, so a parsed id
// formats back to the same bytes: two spellings of one position would defeat dedup and resume.

#include "fuzz_check.hpp"

#include "ssegw/core/envelope.hpp"
#include "ssegw/core/stream_position.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

void check_position(std::string_view text) {
    const auto pos = ssegw::stream_position::parse(text);
    if (!pos) return;
    SSEGW_FUZZ_CHECK(pos->format() == text);
    SSEGW_FUZZ_CHECK(!pos->epoch.empty() && pos->epoch.size() <= 24);
    SSEGW_FUZZ_CHECK(pos->epoch.find_first_not_of("0123456789abcdef") == std::string::npos);
    SSEGW_FUZZ_CHECK(pos->time >= 0);
    const auto again = ssegw::stream_position::parse(pos->format());
    SSEGW_FUZZ_CHECK(again && *again == *pos);
    SSEGW_FUZZ_CHECK(text.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_position(text);

    const auto env = ssegw::parse_envelope(text);
    if (env) {
        SSEGW_FUZZ_CHECK(text.front() == ssegw::envelope_marker);
        // id_text is the position exactly as published, and the payload is all that follows it.
        SSEGW_FUZZ_CHECK(env->id_text == env->position.format());
        SSEGW_FUZZ_CHECK(text.substr(1, env->id_text.size()) == env->id_text);
        SSEGW_FUZZ_CHECK(text.size() == 1 + env->id_text.size() + 1 + env->payload.size());
        SSEGW_FUZZ_CHECK(text[1 + env->id_text.size()] == '\n');
        SSEGW_FUZZ_CHECK(env->payload.data() == text.data() + 2 + env->id_text.size());
    } else if (!text.empty() && text.front() == ssegw::envelope_marker) {
        // A marked message is refused only for a missing newline or a malformed position.
        const auto nl = text.find('\n');
        SSEGW_FUZZ_CHECK(nl == std::string_view::npos ||
                         !ssegw::stream_position::parse(text.substr(1, nl - 1)));
    }
    // Also try the input as the position inside an envelope, as sse_publish would send it.
    if (size <= 64 && text.find('\n') == std::string_view::npos) {
        std::string wrapped;
        wrapped.push_back(ssegw::envelope_marker);
        wrapped.append(text).append("\n{\"data\":1}");
        const auto w = ssegw::parse_envelope(wrapped);
        SSEGW_FUZZ_CHECK(w.has_value() == ssegw::stream_position::parse(text).has_value());
        if (w) SSEGW_FUZZ_CHECK(w->payload == "{\"data\":1}" && w->id_text == text);
    }
    return 0;
}
