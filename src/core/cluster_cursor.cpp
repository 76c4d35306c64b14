#include "ssegw/core/cluster_cursor.hpp"

#include <algorithm>

namespace ssegw {

namespace {

constexpr std::uint32_t hash_bits = 20;
constexpr std::uint64_t max_u64 = ~std::uint64_t{0};

int digit_of(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'z') return c - 'a' + 10;
    return -1;
}

/// Writes v in base36 to out (room for 13 bytes); returns the number of digits.
std::size_t write_base36(char* out, std::uint64_t v) noexcept {
    char buf[16];
    std::size_t n = 0;
    do {
        const auto d = static_cast<int>(v % 36);
        buf[n++] = static_cast<char>(d < 10 ? '0' + d : 'a' + d - 10);
        v /= 36;
    } while (v != 0);
    for (std::size_t i = 0; i < n; ++i) out[i] = buf[n - 1 - i];
    return n;
}

void append_base36(std::string& out, std::uint64_t v) {
    char buf[16];
    out.append(buf, write_base36(buf, v));
}

} // namespace

std::uint32_t cursor_hash(std::string_view channel) noexcept {
    std::uint32_t h = 2166136261u;
    for (char c : channel) {
        h ^= static_cast<unsigned char>(c);
        h *= 16777619u;
    }
    // XOR-fold to 20 bits (the FNV authors' advice for widths that are not a power of two).
    return ((h >> hash_bits) ^ h) & ((1u << hash_bits) - 1);
}

std::string to_base36(std::uint64_t v) {
    std::string out;
    append_base36(out, v);
    return out;
}

std::optional<std::uint64_t> from_base36(std::string_view s) noexcept {
    // One spelling per number: "0" alone, otherwise no leading zero; 13 digits cover 2^64.
    if (s.empty() || s.size() > 13 || (s.size() > 1 && s.front() == '0')) return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        const int d = digit_of(c);
        if (d < 0) return std::nullopt;
        if (v > (max_u64 - static_cast<std::uint64_t>(d)) / 36) return std::nullopt;
        v = v * 36 + static_cast<std::uint64_t>(d);
    }
    return v;
}

void append_component(std::string& out, const cursor_component& c) {
    append_base36(out, c.hash);
    out.push_back('.');
    char buf[max_position_text];
    out.append(buf, write_position(buf, c.at));
}

std::size_t write_position(char* out, const channel_position& at) noexcept {
    std::size_t n = write_base36(out, at.epoch);
    out[n++] = '.';
    return n + write_base36(out + n, at.seq);
}

std::string cluster_cursor::format() const {
    std::string out;
    out.reserve(2 + components.size() * 18);
    out += "2:";
    for (std::size_t i = 0; i < components.size(); ++i) {
        if (i != 0) out.push_back(',');
        append_component(out, components[i]);
    }
    return out;
}

std::optional<cluster_cursor> cluster_cursor::parse(std::string_view text) noexcept {
    if (text.size() < 3 || text.size() > max_text_bytes || text.substr(0, 2) != "2:")
        return std::nullopt;
    text.remove_prefix(2);
    cursor_component parsed[max_components];
    std::size_t n = 0;
    for (;;) {
        if (n == max_components) return std::nullopt;
        const auto comma = text.find(',');
        const auto part = text.substr(0, comma);
        const auto dot1 = part.find('.');
        if (dot1 == std::string_view::npos) return std::nullopt;
        const auto dot2 = part.find('.', dot1 + 1);
        if (dot2 == std::string_view::npos) return std::nullopt;
        const auto h = from_base36(part.substr(0, dot1));
        const auto e = from_base36(part.substr(dot1 + 1, dot2 - dot1 - 1));
        const auto s = from_base36(part.substr(dot2 + 1));
        if (!h || !e || !s || *h >= (1u << hash_bits)) return std::nullopt;
        for (std::size_t i = 0; i < n; ++i)
            if (parsed[i].hash == *h) return std::nullopt;
        parsed[n++] = {static_cast<std::uint32_t>(*h), {*e, *s}};
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    try {
        cluster_cursor out;
        out.components.assign(parsed, parsed + n);
        return out;
    } catch (...) {
        return std::nullopt;
    }
}

const channel_position* cluster_cursor::find(std::uint32_t hash) const noexcept {
    const auto it = std::find_if(components.begin(), components.end(),
                                 [hash](const cursor_component& c) { return c.hash == hash; });
    return it == components.end() ? nullptr : &it->at;
}

std::optional<cluster_envelope> parse_cluster_envelope(std::string_view message) noexcept {
    if (message.size() < 4 || message[0] != '\x1e' || message[1] != '2' || message[2] != ':')
        return std::nullopt;
    const auto nl = message.find('\n');
    if (nl == std::string_view::npos) return std::nullopt;
    const auto id = message.substr(3, nl - 3);
    const auto dot = id.find('.');
    if (dot == std::string_view::npos) return std::nullopt;
    const auto e = from_base36(id.substr(0, dot));
    const auto s = from_base36(id.substr(dot + 1));
    if (!e || !s) return std::nullopt;
    return cluster_envelope{{*e, *s}, message.substr(nl + 1)};
}

} // namespace ssegw
