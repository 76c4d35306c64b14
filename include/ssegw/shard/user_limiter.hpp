#pragma once
// Per-user connection count across all shards of the process, for
// server.max_connections_per_user. Touched only when a stream opens or closes, never per event,
// so a mutex is fine here.
//
// Keyed by a 64-bit hash of the user id, not the id itself: one entry per distinct user is
// per-stream memory when every stream is a different user (16 bytes in a flat table instead of a
// ~70-byte node holding a std::string, plus the string's own block for ids past 15 bytes, e.g.
// UUIDs). Two users whose ids collide would share one count: with 64 bits that takes ~4 billion
// distinct users for a one-in-two chance, and ids come from signed tokens.

#include <cstdint>
#include <mutex>
#include <string_view>

#include <boost/unordered/unordered_flat_map.hpp>

namespace ssegw {

class user_limiter {
public:
    explicit user_limiter(std::uint32_t max_per_user) : max_(max_per_user) {}

    /// Takes a slot for user; false when the user already holds max_per_user streams.
    bool try_acquire(std::string_view user);
    void release(std::string_view user);
    std::uint32_t count(std::string_view user) const;
    /// Distinct users holding at least one slot.
    std::size_t users() const;

private:
    static std::uint64_t key_of(std::string_view user) noexcept;

    std::uint32_t max_;
    mutable std::mutex mutex_;
    boost::unordered_flat_map<std::uint64_t, std::uint32_t> counts_;
};

} // namespace ssegw
