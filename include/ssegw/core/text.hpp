#pragma once
// Small text helpers shared by the HTTP-facing parsers.

#include <string_view>

namespace ssegw {

/// Strips HTTP optional whitespace (spaces and tabs, RFC 9110 OWS) from both ends.
constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

} // namespace ssegw
