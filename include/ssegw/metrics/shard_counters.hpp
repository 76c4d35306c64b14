#pragma once
// Counters owned by one shard thread. Only the owner writes them (relaxed atomics, no lock, no
// contention); the admin thread reads them at scrape time and sums over shards.

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "ssegw/core/histogram.hpp"

namespace ssegw {

/// Why a stream or a connection attempt ended; a label on ssegw_connections_closed_total.
enum class close_reason : std::uint8_t {
    client_gone,     ///< EOF or reset from the client
    slow_consumer,   ///< queued bytes exceeded sse.max_queue_bytes
    write_stalled,   ///< a write made no progress for sse.write_timeout_seconds
    drained,         ///< shutdown or instance drain: told to come back elsewhere
    token_expired,   ///< the token's exp passed: told to come back with a fresh one
    history_unavailable, ///< its history could not be read: told to come back and resume
    lifetime_reached, ///< sse.max_lifetime_seconds passed: told to come back (rebalancing)
    rejected,        ///< answered with an HTTP error during the handshake
    handshake_timeout, ///< no complete request head within server.handshake_timeout_ms
    handshake_failed,///< reset or not HTTP before a response could be sent
    count_
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(close_reason::count_)>
    close_reason_names = {"client_gone", "slow_consumer", "write_stalled",
                          "drained",     "token_expired", "history_unavailable",
                          "lifetime_reached", "rejected", "handshake_timeout",
                          "handshake_failed"};

/// Why a subscribe request was refused; a label on ssegw_requests_rejected_total.
enum class reject_reason : std::uint8_t {
    bad_request, unauthorized, forbidden, not_found, method_not_allowed, too_many_per_user,
    headers_too_large, target_too_long, origin_not_allowed, instance_full, draining, count_
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(reject_reason::count_)>
    reject_reason_names = {"bad_request",       "unauthorized",      "forbidden",
                           "not_found",         "method_not_allowed", "too_many_per_user",
                           "headers_too_large", "target_too_long",   "origin_not_allowed",
                           "instance_full",     "draining"};

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
    latency_histogram delivery_latency; ///< from receipt by the process to the session's write
    size_histogram fanout;              ///< streams one routed event reached on this shard

    counter resumes{0};            ///< streams that came back with a Last-Event-ID
    counter replayed_events{0};    ///< history events written to resuming streams
    counter truncated_resumes{0};  ///< resumes told "history-truncated" (gap or unknown id)
    counter unknown_positions{0};  ///< Last-Event-IDs that were not a position of ours
    counter resume_failures{0};    ///< history could not be read; the stream was sent back
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
