#pragma once
// Counters owned by one shard thread. Only the owner writes them (relaxed atomics, no lock, no
// contention); the admin thread reads them at scrape time and sums over shards.

#include <array>
#include <atomic>
#include <cstdint>

#include "ssegw/core/histogram.hpp"
#include "ssegw/shard/close_reason.hpp"
#include "ssegw/shard/reject_reason.hpp"

namespace ssegw {

struct shard_counters {
    using counter = std::atomic<std::uint64_t>;

    std::atomic<std::int64_t> connections{0}; ///< open SSE streams on this shard
    counter opened{0};
    std::array<counter, static_cast<std::size_t>(close_reason::count_)> closed{};
    std::array<counter, static_cast<std::size_t>(reject_reason::count_)> rejected{};
    counter events_routed{0};    ///< events handed to this shard by the router
    counter frames_delivered{0}; ///< frames queued to a session (one per session per event)
    counter bytes_written{0};
    counter heartbeats{0};
    counter expiry_notices{0};                ///< event: token-expiring sent
    counter revocations_full{0};              ///< revocation records not kept: the list was full
    std::atomic<std::int64_t> revocations{0}; ///< records in this shard's revocation list
    latency_histogram delivery_latency; ///< from receipt by the process to the session's write
    size_histogram fanout;              ///< streams one routed event reached on this shard

    counter resumes{0};               ///< streams that came back with a Last-Event-ID
    counter replayed_events{0};       ///< history events written to resuming streams
    counter truncated_resumes{0};     ///< resumes told "history-truncated" (gap or unknown id)
    counter unknown_positions{0};     ///< Last-Event-IDs that were not a position of ours
    counter resume_failures{0};       ///< history could not be read; the stream was sent back
    latency_histogram resume_latency; ///< from the request to the missed events being queued

    /// Owner-thread increment: a relaxed load + store, cheaper than fetch_add, valid because
    /// this thread is the only writer.
    static void bump(counter& c, std::uint64_t n = 1) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    void count_close(close_reason r) noexcept { bump(closed[static_cast<std::size_t>(r)]); }
    void count_reject(reject_reason r) noexcept { bump(rejected[static_cast<std::size_t>(r)]); }
};

} // namespace ssegw
