#include "ssegw/http/subscribe_request.hpp"

#include <algorithm>

#include "ssegw/core/channel.hpp"
#include "ssegw/core/query_string.hpp"

namespace ssegw {

std::optional<subscribe_request> parse_subscribe_request(std::string_view query,
                                                         std::string_view token_param,
                                                         std::size_t max_topics,
                                                         subscribe_request_error& error) {
    auto params = parse_query(query);
    if (!params) {
        error.reason = "malformed query string";
        return std::nullopt;
    }
    subscribe_request out;
    for (auto& p : *params) {
        if (p.key == "topic") {
            if (!is_valid_name(p.value)) {
                error.reason = "invalid topic name";
                return std::nullopt;
            }
            if (std::find(out.topics.begin(), out.topics.end(), p.value) != out.topics.end())
                continue;
            if (out.topics.size() >= max_topics) {
                error.reason = "too many topics (max " + std::to_string(max_topics) + ")";
                return std::nullopt;
            }
            out.topics.push_back(std::move(p.value));
        } else if (p.key == "user") {
            out.user = std::move(p.value);
        } else if (p.key == token_param) {
            out.token = std::move(p.value);
        } else if (p.key == "lastEventId") {
            out.last_event_id = std::move(p.value);
        }
    }
    return out;
}

} // namespace ssegw
