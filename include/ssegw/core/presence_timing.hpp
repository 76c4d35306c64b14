#pragma once
// The time bounds of presence, from its settings, in one place: the unit tests check the
// defaults against the contract (a change visible within 2 s, a dead instance's streams gone
// within 30 s), and --check-config refuses settings that cannot keep them sane.

#include <cstdint>

namespace ssegw {

struct presence_timing {
    std::uint32_t flush_ms;              ///< a shard gathers changes this long
    std::uint32_t heartbeat_ms;          ///< an instance's liveness refresh and sweep period
    std::uint32_t instance_ttl_seconds;  ///< records count this long after the last heartbeat
    std::uint32_t offline_grace_seconds; ///< a user at zero turns offline after this long

    /// Longest time from a stream opening or closing to GET /presence showing it, given Redis
    /// answers within `redis_ms`: the shard's gathering, then one call in flight before ours
    /// (an instance keeps one call in flight), then ours.
    constexpr std::uint64_t change_visible_ms(std::uint32_t redis_ms) const noexcept {
        return std::uint64_t(flush_ms) + 2ull * redis_ms;
    }

    /// Longest time the streams of an instance killed without cleaning up keep counting in
    /// GET /presence: its last heartbeat may have landed just before the kill, and its records
    /// are ignored by every read from the instant their deadline passes (the sweep that
    /// deletes them comes later and changes no answer).
    constexpr std::uint64_t dead_instance_counted_ms() const noexcept {
        return std::uint64_t(instance_ttl_seconds) * 1000;
    }

    /// Longest time until the offline entry of a user whose only instance died: the records
    /// expire, the next heartbeat of any live instance (at most heartbeat_ms later) sweeps
    /// them, the grace runs (the instance may only have lost Redis for a while and come back
    /// with its counts), and the heartbeat after it writes the offline.
    constexpr std::uint64_t dead_instance_offline_ms() const noexcept {
        return dead_instance_counted_ms() + heartbeat_ms +
               std::uint64_t(offline_grace_seconds) * 1000 + heartbeat_ms;
    }

    /// Longest time from a user's last stream closing to its offline entry: the change is
    /// reported (change_visible_ms), the grace runs, and the next heartbeat writes it.
    constexpr std::uint64_t offline_written_ms(std::uint32_t redis_ms) const noexcept {
        return change_visible_ms(redis_ms) + std::uint64_t(offline_grace_seconds) * 1000 +
               heartbeat_ms + redis_ms;
    }
};

} // namespace ssegw
