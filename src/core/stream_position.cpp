#include "ssegw/core/stream_position.hpp"

#include "ssegw/core/text.hpp"

namespace ssegw {

namespace {

constexpr std::size_t max_epoch_digits = 24;

template <class Int>
bool parse_decimal(std::string_view s, Int& out) noexcept {
    if (s.empty() || s.size() > 20) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    if (s.size() > 1 && s.front() == '0') return false; // one spelling per number
    return parse_whole_number(s, out);
}

} // namespace

std::string stream_position::format() const {
    std::string out;
    out.reserve(epoch.size() + 32);
    out += epoch;
    out += '.';
    out += std::to_string(seq);
    out += '.';
    out += std::to_string(time);
    return out;
}

std::optional<stream_position> stream_position::parse(std::string_view text) noexcept {
    const auto dot1 = text.find('.');
    if (dot1 == std::string_view::npos) return std::nullopt;
    const auto dot2 = text.find('.', dot1 + 1);
    if (dot2 == std::string_view::npos) return std::nullopt;
    const auto epoch = text.substr(0, dot1);
    if (epoch.empty() || epoch.size() > max_epoch_digits) return std::nullopt;
    for (char c : epoch)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return std::nullopt;
    stream_position p;
    if (!parse_decimal(text.substr(dot1 + 1, dot2 - dot1 - 1), p.seq)) return std::nullopt;
    if (!parse_decimal(text.substr(dot2 + 1), p.time)) return std::nullopt;
    try {
        p.epoch.assign(epoch);
    } catch (...) {
        return std::nullopt;
    }
    return p;
}

} // namespace ssegw
