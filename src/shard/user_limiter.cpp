#include "ssegw/shard/user_limiter.hpp"

namespace ssegw {

bool user_limiter::try_acquire(std::string_view user) {
    std::lock_guard lock(mutex_);
    auto [it, inserted] = counts_.try_emplace(std::string(user), 0);
    if (max_ != 0 && it->second >= max_) return false;
    ++it->second;
    return true;
}

void user_limiter::release(std::string_view user) {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(std::string(user));
    if (it == counts_.end()) return;
    if (--it->second == 0) counts_.erase(it);
}

std::uint32_t user_limiter::count(std::string_view user) const {
    std::lock_guard lock(mutex_);
    auto it = counts_.find(std::string(user));
    return it == counts_.end() ? 0 : it->second;
}

} // namespace ssegw
