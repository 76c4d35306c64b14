#pragma once
// Small text helpers shared by the HTTP-facing parsers, the Redis reply readers and the two
// places that check credentials.

#include <charconv>
#include <cstddef>
#include <string_view>
#include <system_error>

namespace ssegw {

/// Strips HTTP optional whitespace (spaces and tabs, RFC 9110 OWS) from both ends.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

/// The credential of "Authorization: Bearer <credential>" (scheme case-insensitive, RFC 9110
/// auth-scheme), or empty for any other scheme or shape.
constexpr std::string_view bearer_token(std::string_view authorization) noexcept {
    constexpr std::string_view scheme = "bearer";
    authorization = trim_ows(authorization);
    if (authorization.size() <= scheme.size()) return {};
    for (std::size_t i = 0; i < scheme.size(); ++i) {
        char c = authorization[i];
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        if (c != scheme[i]) return {};
    }
    const char sep = authorization[scheme.size()];
    if (sep != ' ' && sep != '\t') return {};
    return trim_ows(authorization.substr(scheme.size() + 1));
}

/// `s` as a whole number of type Int: every character used, no spaces, no '+', a '-' only for
/// signed types; false when empty, malformed or out of Int's range.
template <class Int>
bool parse_whole_number(std::string_view s, Int& out) noexcept {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && ec == std::errc() && end == s.data() + s.size();
}

/// Compares a presented secret with the expected one in time that depends only on the length
/// of what was presented (which the presenter knows anyway), never on where they differ or on
/// the expected secret's length. An empty expected secret matches nothing.
inline bool constant_time_equal(std::string_view expected, std::string_view presented) noexcept {
    if (expected.empty()) return false;
    // volatile: keeps the compiler from turning the loop into an early-exit comparison.
    volatile unsigned char diff = expected.size() == presented.size() ? 0 : 1;
    for (std::size_t i = 0; i < presented.size(); ++i)
        diff = diff | static_cast<unsigned char>(expected[i % expected.size()] ^ presented[i]);
    return diff == 0;
}

} // namespace ssegw
