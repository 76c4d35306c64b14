#pragma once
// SSE event blocks, built once per event per process and shared read-only by every session that
// receives the event: fan-out to N sessions costs N reference counts, not N copies.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace ssegw {

/// The bytes of one complete SSE block (ending with the blank line), immutable and shared.
using frame = std::shared_ptr<const std::string>;

/// Why a published payload was not turned into a frame. Dropping never breaks a stream.
enum class drop_reason { too_large, bad_event_name, bad_id, bad_retry };

/// Stable snake_case name of a drop reason, used as a metric label and in logs.
std::string_view to_string(drop_reason reason) noexcept;

/// What a publisher must change, for an error answer (POST /publish refuses what delivery would
/// drop, with this text).
std::string_view explain(drop_reason reason) noexcept;

/// Either a frame (bytes set, dropped empty) or the reason the payload was dropped (bytes null).
struct frame_result {
    frame bytes;
    std::optional<drop_reason> dropped;
    /// The block has an `id:` line: it moves the client's Last-Event-ID.
    bool has_id = false;
};

/// Payloads nested deeper than this are sent verbatim rather than parsed: nlohmann's dump()
/// recurses, and a 64 KiB "[[[[..." must not be able to exhaust a shard thread's stack.
inline constexpr std::size_t max_payload_json_depth = 64;

/// Builds the SSE block for one published payload (see CONTRACT.md, "Publishing").
/// A JSON object with a "data" member gives `event:`, `id:`, `retry:` and `data:` lines: a string
/// `data` is split on LF, CRLF and CR into one `data:` line each, any other JSON value is written
/// compactly on one line. "event", "id" and "retry" set to null count as absent. Anything else
/// (not JSON, not an object, no "data") is sent verbatim as data, split the same way.
/// Dropped: payload.size() > max_payload_bytes (too_large); "event" not a string or with
/// CR/LF/NUL (bad_event_name); "id" not a string/number or with CR/LF/NUL (bad_id); "retry" not
/// a non-negative integer (bad_retry). A non-empty forced_id replaces the payload's id (which is
/// then neither written nor checked); it must itself be free of CR/LF/NUL (else bad_id).
/// Never throws except std::bad_alloc.
frame_result build_frame(std::string_view payload, std::size_t max_payload_bytes,
                         std::string_view forced_id = {});

/// build_frame with every JSON object parsed by nlohmann, never read by the simple-envelope
/// reader (sse/simple_envelope.hpp): the reference the frame fuzzer holds build_frame to.
frame_result build_frame_fully_parsed(std::string_view payload, std::size_t max_payload_bytes,
                                      std::string_view forced_id = {});

/// `: text\n\n`, a comment EventSource ignores (heartbeats, the first bytes of a stream).
/// A multi-line text becomes several comment lines, so it can never inject a field.
frame make_comment_frame(std::string_view text);

/// `event: <event>` and `data: <data>` (several data lines when data has line breaks): an event
/// the gateway itself sends (disconnect, token-expiring). Null when event is empty or contains
/// CR, LF or NUL.
frame make_event_frame(std::string_view event, std::string_view data);

/// `retry: N\n\n`: sets the client's reconnection delay without dispatching an event.
frame make_retry_frame(std::uint32_t retry_ms);

/// Name of the event that carries a client's position (see make_position_frame).
inline constexpr std::string_view position_event_name = "ssegw-position";

/// `event: ssegw-position\nid: X\ndata:\n\n`: moves the client's last event id. A bare `id:`
/// block would do that in browsers, but several common clients (the npm `eventsource` package
/// among them) ignore a block without `data:`; with an empty data line every client keeps the
/// id, and EventSource dispatches it only to a listener of this name, never to onmessage.
/// Null when id contains CR, LF or NUL (which would inject a field or be ignored by browsers);
/// ids the gateway generates never do.
frame make_position_frame(std::string_view id);

} // namespace ssegw
