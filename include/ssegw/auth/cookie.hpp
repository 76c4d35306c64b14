#pragma once
// Minimal Cookie request-header lookup, enough to find the JWT cookie.

#include <optional>
#include <string_view>

namespace ssegw {

/// Value of the first cookie called `name` in a Cookie header ("a=1; sse_token=xyz"), or nullopt.
/// Names match exactly (case-sensitive, as browsers send them); whitespace around pairs is
/// ignored; one pair of surrounding double quotes is stripped from the value. The result points
/// into `header`.
std::optional<std::string_view> find_cookie(std::string_view header,
                                            std::string_view name) noexcept;

} // namespace ssegw
