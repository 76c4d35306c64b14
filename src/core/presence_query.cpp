#include "ssegw/core/presence_query.hpp"

#include <unordered_set>

#include "ssegw/core/channel.hpp"
#include "ssegw/core/query_string.hpp"

namespace ssegw {

std::variant<std::vector<std::string>, std::string> parse_presence_query(std::string_view query) {
    // Room for every user parameter plus a few others (an admin key in the query is not
    // accepted, but a cache-buster might be there).
    auto params = parse_query(query, max_presence_users + 16);
    if (!params)
        return std::string("malformed query (bad percent escape or too many parameters; at most " +
                           std::to_string(max_presence_users) + " users)");
    std::vector<std::string> users;
    std::unordered_set<std::string> seen;
    for (auto& p : *params) {
        if (p.key != "user") continue;
        if (!is_valid_name(p.value))
            return std::string("user must be 1 to " + std::to_string(max_name_bytes) +
                               " bytes of UTF-8 without control characters");
        if (!seen.insert(p.value).second) continue;
        if (users.size() == max_presence_users)
            return std::string("at most " + std::to_string(max_presence_users) +
                               " users per request");
        users.push_back(std::move(p.value));
    }
    if (users.empty()) return std::string("name at least one user: /presence?user=<id>");
    return users;
}

} // namespace ssegw
