#include "ssegw/shard/registry.hpp"

namespace ssegw {

bool registry::add(std::string_view channel, session* s) {
    auto it = by_channel_.find(channel);
    if (it == by_channel_.end()) {
        by_channel_.try_emplace(make_key(channel)).first->second.push_back(s);
        return true;
    }
    it->second.push_back(s);
    return false;
}

bool registry::remove(std::string_view channel, session* s) {
    auto it = by_channel_.find(channel);
    if (it == by_channel_.end()) return false;
    auto& list = it->second;
    if (!list.erase(s) || !list.empty()) return false;
    by_channel_.erase(it);
    return true;
}

const session_list* registry::find(std::string_view channel) const {
    auto it = by_channel_.find(channel);
    return it == by_channel_.end() ? nullptr : &it->second;
}

} // namespace ssegw
