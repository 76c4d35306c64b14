#pragma once
// The parameters of GET /events, taken from the query string: what the client asks to join and
// the credentials it carries there. Pure parsing, no I/O, so it is unit-tested and fuzzed alone.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

struct subscribe_request {
    std::vector<std::string> topics; ///< deduplicated, in first-seen order
    std::string user;                ///< ?user=, only honoured in auth.mode none
    std::string token;               ///< ?<auth.jwt.query_param>=
    std::string last_event_id;       ///< ?lastEventId= (the Last-Event-ID header wins)
};

/// A parse failure: the short text sent back with 400.
struct subscribe_request_error {
    std::string reason;
};

/// Parses a query string; max_topics bounds the distinct topics. Unknown parameters are
/// ignored (cache busters such as ?_=123 are common).
std::optional<subscribe_request> parse_subscribe_request(std::string_view query,
                                                         std::string_view token_param,
                                                         std::size_t max_topics,
                                                         subscribe_request_error& error);

} // namespace ssegw
