#include "ssegw/sse/frame_body.hpp"

#include <string>

namespace ssegw {

namespace {

// A forced id no payload can produce on a line of its own: build_frame writes it as the block's
// `id:` line, which is then cut out. \x01 is a clean field byte (only CR, LF, NUL are not).
constexpr std::string_view placeholder_line = "id: \x01\n";

} // namespace

frame_result build_frame_body(std::string_view payload, std::size_t max_payload_bytes) {
    auto built = build_frame(payload, max_payload_bytes, "\x01");
    if (built.dropped) return built;
    const std::string& block = *built.bytes;
    // The id line starts the block or follows a line break (an event name may hold the bytes,
    // but never at the start of a line).
    std::size_t at = 0;
    if (block.compare(0, placeholder_line.size(), placeholder_line) != 0) {
        at = block.find(std::string("\n").append(placeholder_line));
        if (at == std::string::npos) return {nullptr, drop_reason::bad_id};
        ++at;
    }
    std::string body;
    body.reserve(block.size() - placeholder_line.size() - 1);
    body.append(block, 0, at);
    body.append(block, at + placeholder_line.size(),
                block.size() - at - placeholder_line.size() - 1); // without the final blank line
    return {std::make_shared<const std::string>(std::move(body)), std::nullopt, false};
}

frame make_id_tail(std::string_view id) {
    for (char c : id)
        if (c == '\r' || c == '\n' || c == '\0') return nullptr;
    std::string tail;
    tail.reserve(4 + id.size() + 2);
    tail.append("id: ").append(id).append("\n\n");
    return std::make_shared<const std::string>(std::move(tail));
}

} // namespace ssegw
