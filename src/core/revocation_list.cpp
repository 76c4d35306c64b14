#include "ssegw/core/revocation_list.hpp"

#include <algorithm>

namespace ssegw {

bool revocation_list::add(const control_message& m) {
    if (!m.revokes()) return true;
    const bool full = size() >= max_entries;
    if (m.revoke && !m.user.empty()) {
        auto it = users_.find(m.user);
        if (it != users_.end()) {
            // A later revoke of the same user moves both bounds forward; a replayed older one
            // changes nothing.
            it->second.issued_up_to = std::max(it->second.issued_up_to, m.at);
            it->second.until = std::max(it->second.until, m.until);
        } else if (full) {
            return false;
        } else {
            users_.try_emplace(make_key(m.user), user_record{m.at, m.until});
        }
    }
    if (!m.jti.empty()) {
        auto it = jtis_.find(m.jti);
        if (it != jtis_.end())
            it->second = std::max(it->second, m.until);
        else if (size() >= max_entries)
            return false;
        else
            jtis_.try_emplace(make_key(m.jti), m.until);
    }
    return true;
}

bool revocation_list::refuses(std::string_view user, std::optional<std::int64_t> issued_at,
                              std::string_view jti, std::int64_t now) const {
    if (!users_.empty()) {
        if (auto it = users_.find(user); it != users_.end() && now < it->second.until) {
            // A token without iat cannot show it was issued after the revoke: refused.
            if (!issued_at || *issued_at <= it->second.issued_up_to) return true;
        }
    }
    if (!jti.empty() && !jtis_.empty()) {
        if (auto it = jtis_.find(jti); it != jtis_.end() && now < it->second) return true;
    }
    return false;
}

void revocation_list::expire(std::int64_t now) {
    boost::unordered::erase_if(users_, [now](const auto& kv) { return kv.second.until <= now; });
    boost::unordered::erase_if(jtis_, [now](const auto& kv) { return kv.second <= now; });
}

} // namespace ssegw
