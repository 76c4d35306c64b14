#include "ssegw/auth/principal.hpp"

namespace ssegw {

bool principal::may_join(std::string_view topic) const {
    for (const std::string& grant : topic_grants) {
        std::string_view g = grant;
        if (g.empty()) continue;
        if (g.back() == '*') {
            // Only a trailing '*' is a wildcard; the prefix keeps its '.' so "prices.*" does not
            // admit "pricesX". "*" alone has an empty prefix and admits everything.
            if (topic.starts_with(g.substr(0, g.size() - 1))) return true;
        } else if (g == topic) {
            return true;
        }
    }
    return false;
}

} // namespace ssegw
