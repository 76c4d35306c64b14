#pragma once
// Request-target parsing for the subscribe endpoint: `?topic=a&topic=b&token=...`.
// Returns optionals instead of throwing: a malformed query is a 400, not an exception.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

/// Decodes %XX escapes (either hex case) and, when plus_as_space, '+' as ' ' (form encoding,
/// which is what browsers and URLSearchParams produce in a query). Nullopt on a '%' not followed
/// by two hex digits, or when the result would hold a NUL byte (escaped or raw): NUL would
/// truncate names in C APIs and corrupt frames and log lines. Other bytes, UTF-8 included, pass.
std::optional<std::string> percent_decode(std::string_view in, bool plus_as_space = true);

/// One decoded `key=value` pair of a query string.
struct query_param {
    std::string key;
    std::string value;
};

/// Splits on '&' and decodes each `key=value` (a piece without '=' has an empty value; empty
/// pieces are skipped). Repeated keys are all kept, in order. Nullopt on a bad escape or when
/// there are more than max_params pieces, so a hostile query can't make us allocate without bound.
std::optional<std::vector<query_param>> parse_query(std::string_view query,
                                                    std::size_t max_params = 256);

/// A request target split into its path and query, both views into the target (no decoding).
struct request_target {
    std::string_view path;
    std::string_view query; ///< without the '?'; empty when there is none
};

/// "/events?topic=a" -> {"/events", "topic=a"}. A '#' fragment (never sent by browsers, but
/// possible from hand-written clients) is cut off rather than taken as part of the query.
request_target split_target(std::string_view target) noexcept;

} // namespace ssegw
