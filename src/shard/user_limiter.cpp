#include "ssegw/shard/user_limiter.hpp"

#include <functional>

namespace ssegw {

std::uint64_t user_limiter::key_of(std::string_view user) noexcept {
    // libstdc++'s string hash is 64-bit murmur-style over every byte; the flat map mixes it
    // again for its buckets.
    return std::hash<std::string_view>{}(user);
}

bool user_limiter::try_acquire(std::string_view user) {
    const auto key = key_of(user);
    std::lock_guard lock(mutex_);
    auto [it, inserted] = counts_.try_emplace(key, 0);
    if (max_ != 0 && it->second >= max_) return false;
    ++it->second;
    return true;
}

void user_limiter::release(std::string_view user) {
    const auto key = key_of(user);
    std::lock_guard lock(mutex_);
    auto it = counts_.find(key);
    if (it == counts_.end()) return;
    if (--it->second == 0) counts_.erase(it);
}

std::uint32_t user_limiter::count(std::string_view user) const {
    const auto key = key_of(user);
    std::lock_guard lock(mutex_);
    auto it = counts_.find(key);
    return it == counts_.end() ? 0 : it->second;
}

std::size_t user_limiter::users() const {
    std::lock_guard lock(mutex_);
    return counts_.size();
}

} // namespace ssegw
