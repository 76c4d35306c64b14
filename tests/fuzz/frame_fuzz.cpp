// Fuzzes build_frame, the one place a publisher's bytes become SSE wire format: whatever the
// payload, the block must parse back as exactly one event with only the fields we meant to send,
// and be byte for byte what the full JSON parse gives (build_frame_fully_parsed).
//
// Input layout (see corpus/frame/): byte 0 picks the size limit (0xff: unlimited, else
// byte * 64), byte 1 is the length n of the forced id, the next n bytes are the forced id (empty:
// none) and the rest is the payload.

#include "fuzz_check.hpp"

#include "ssegw/sse/frame.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view field_prefixes[] = {"event: ", "id: ", "retry: ", "data: "};

bool starts_with_field(std::string_view line) {
    for (auto p : field_prefixes)
        if (line.starts_with(p)) return true;
    return false;
}

// A verbatim payload's data lines, joined by LF, are the payload with CRLF and CR read as LF.
std::string normalised_lines(std::string_view payload) {
    std::string out;
    for (std::size_t i = 0; i < payload.size(); ++i) {
        if (payload[i] == '\r') {
            if (i + 1 < payload.size() && payload[i + 1] == '\n') ++i;
            out.push_back('\n');
        } else {
            out.push_back(payload[i]);
        }
    }
    return out;
}

bool looks_like_object(std::string_view payload) {
    const auto first = payload.find_first_not_of(" \t\r\n");
    return first != std::string_view::npos && payload[first] == '{';
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t limit =
        data[0] == 0xff ? std::numeric_limits<std::size_t>::max() : std::size_t{data[0]} * 64;
    const std::size_t id_len = std::min<std::size_t>(data[1], size - 2);
    const std::string_view forced_id(reinterpret_cast<const char*>(data) + 2, id_len);
    const std::string_view payload(reinterpret_cast<const char*>(data) + 2 + id_len,
                                   size - 2 - id_len);

    const auto result = ssegw::build_frame(payload, limit, forced_id);

    // The simple-envelope reader is a shortcut: whatever it accepts must come out exactly as
    // nlohmann's parse would have made it.
    const auto reference = ssegw::build_frame_fully_parsed(payload, limit, forced_id);
    SSEGW_FUZZ_CHECK(result.dropped == reference.dropped);
    SSEGW_FUZZ_CHECK(result.has_id == reference.has_id);
    SSEGW_FUZZ_CHECK((result.bytes == nullptr) == (reference.bytes == nullptr));
    if (result.bytes) SSEGW_FUZZ_CHECK(*result.bytes == *reference.bytes);

    if (payload.size() > limit) {
        SSEGW_FUZZ_CHECK(!result.bytes && result.dropped == ssegw::drop_reason::too_large);
        return 0;
    }
    const bool id_clean =
        forced_id.find_first_of(std::string_view("\r\n\0", 3)) == std::string_view::npos;
    if (!id_clean) {
        SSEGW_FUZZ_CHECK(!result.bytes && result.dropped == ssegw::drop_reason::bad_id);
        return 0;
    }
    if (result.dropped) {
        SSEGW_FUZZ_CHECK(!result.bytes);
        // Only a JSON object can carry a bad event/id/retry member; text is always sent.
        SSEGW_FUZZ_CHECK(looks_like_object(payload));
        SSEGW_FUZZ_CHECK(*result.dropped != ssegw::drop_reason::too_large);
        return 0;
    }
    SSEGW_FUZZ_CHECK(result.bytes != nullptr);
    const std::string_view block = *result.bytes;

    // One event: ends with the blank line, and that is the only blank line. No CR anywhere (it
    // would end a line in the browser's parser but not in ours).
    SSEGW_FUZZ_CHECK(block.size() >= 2 && block.ends_with("\n\n"));
    SSEGW_FUZZ_CHECK(block.find('\r') == std::string_view::npos);
    const std::string_view body = block.substr(0, block.size() - 1); // every line ends in '\n'
    SSEGW_FUZZ_CHECK(body.find("\n\n") == std::string_view::npos);

    std::size_t id_lines = 0, data_lines = 0;
    std::string data_text;
    std::string_view id_value;
    for (std::string_view rest = body; !rest.empty();) {
        const auto nl = rest.find('\n');
        SSEGW_FUZZ_CHECK(nl != std::string_view::npos);
        const std::string_view line = rest.substr(0, nl);
        rest.remove_prefix(nl + 1);
        SSEGW_FUZZ_CHECK(starts_with_field(line));
        if (line.starts_with("data: ")) {
            if (data_lines++) data_text.push_back('\n');
            data_text.append(line.substr(6));
        } else {
            // NUL is only tolerated inside data (browsers ignore an id holding it).
            SSEGW_FUZZ_CHECK(line.find('\0') == std::string_view::npos);
            // Fields come before the data.
            SSEGW_FUZZ_CHECK(data_lines == 0);
            if (line.starts_with("id: ")) {
                ++id_lines;
                id_value = line.substr(4);
            }
        }
    }
    SSEGW_FUZZ_CHECK(data_lines >= 1);
    SSEGW_FUZZ_CHECK(id_lines <= 1);
    SSEGW_FUZZ_CHECK(result.has_id == (id_lines == 1));
    if (!forced_id.empty()) SSEGW_FUZZ_CHECK(id_lines == 1 && id_value == forced_id);
    if (!looks_like_object(payload)) {
        SSEGW_FUZZ_CHECK(data_text == normalised_lines(payload));
        SSEGW_FUZZ_CHECK(id_lines == (forced_id.empty() ? 0u : 1u));
    }

    // The other frame builders, on the same bytes.
    const auto comment = ssegw::make_comment_frame(payload);
    SSEGW_FUZZ_CHECK(comment && comment->ends_with("\n\n") &&
                     comment->find('\r') == std::string::npos);
    const auto position = ssegw::make_position_frame(forced_id);
    SSEGW_FUZZ_CHECK(position && *position == "event: ssegw-position\nid: " +
                                                  std::string(forced_id) + "\ndata:\n\n");
    return 0;
}
