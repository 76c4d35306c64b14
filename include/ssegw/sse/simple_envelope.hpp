#pragma once
// The common shape of a published envelope, read without building a JSON document. Parsing
// `{"data":"..."}` with nlohmann (a DOM of map nodes and strings, built and freed per event)
// was most of the gateway's user-space work per unicast event (callgrind: ~9 k of ~19 k
// instructions). Payloads this reader does not accept go through nlohmann as before, so it only
// has to be right about what it accepts, and the frame fuzzer checks it against nlohmann.

#include <cstdint>
#include <optional>
#include <string_view>

namespace ssegw {

/// Members of an envelope, as they appear in the payload (no escapes to undo).
struct simple_envelope {
    std::optional<std::string_view> event;
    std::optional<std::string_view> id;
    std::optional<std::uint64_t> retry;
    std::string_view data;
};

/// Accepts exactly: a JSON object (JSON whitespace around tokens allowed) whose members are
/// "data" (required), "event", "id" (strings) and "retry" (a non-negative integer below 10^19),
/// each at most once, where every string (names included) holds only printable ASCII without `"`
/// or `\` (no escapes, no multi-byte UTF-8, no control characters). Anything else — another
/// member, null, a non-string data, escapes, invalid JSON — gives nullopt.
std::optional<simple_envelope> read_simple_envelope(std::string_view payload) noexcept;

} // namespace ssegw
