#include "ssegw/core/envelope.hpp"

namespace ssegw {

std::optional<envelope> parse_envelope(std::string_view message) noexcept {
    if (message.empty() || message.front() != envelope_marker) return std::nullopt;
    const auto nl = message.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    const auto id = message.substr(1, nl - 1);
    auto pos = stream_position::parse(id);
    if (!pos) return std::nullopt;
    return envelope{std::move(*pos), id, message.substr(nl + 1)};
}

} // namespace ssegw
