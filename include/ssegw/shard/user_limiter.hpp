#pragma once
// Per-user connection count across all shards of the process, for
// server.max_connections_per_user. Touched only when a stream opens or closes, never per event,
// so a mutex is fine here.

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace ssegw {

class user_limiter {
public:
    explicit user_limiter(std::uint32_t max_per_user) : max_(max_per_user) {}

    /// Takes a slot for user; false when the user already holds max_per_user streams.
    bool try_acquire(std::string_view user);
    void release(std::string_view user);
    std::uint32_t count(std::string_view user) const;

private:
    std::uint32_t max_;
    mutable std::mutex mutex_;
    std::unordered_map<std::string, std::uint32_t> counts_;
};

} // namespace ssegw
