#pragma once
// How a stream or a connection attempt ended: shards, sessions and handshakes count it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ssegw {

/// Why a stream or a connection attempt ended; a label on ssegw_connections_closed_total.
enum class close_reason : std::uint8_t {
    client_gone,         ///< EOF or reset from the client
    slow_consumer,       ///< queued bytes exceeded sse.max_queue_bytes
    write_stalled,       ///< a write made no progress for sse.write_timeout_seconds
    drained,             ///< shutdown or instance drain: told to come back elsewhere
    token_expired,       ///< the token's exp passed: told to come back with a fresh one
    history_unavailable, ///< its history could not be read: told to come back and resume
    lifetime_reached,    ///< sse.max_lifetime_seconds passed: told to come back (rebalancing)
    rejected,            ///< answered with an HTTP error during the handshake
    handshake_timeout,   ///< no complete request head within server.handshake_timeout_ms
    handshake_failed,    ///< reset or not HTTP before a response could be sent
    disconnected,        ///< POST /disconnect (plain): told why, may come back
    revoked,             ///< POST /disconnect revoked its token: told why, refused (401) after
    count_
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(close_reason::count_)>
    close_reason_names = {"client_gone",      "slow_consumer", "write_stalled",
                          "drained",          "token_expired", "history_unavailable",
                          "lifetime_reached", "rejected",      "handshake_timeout",
                          "handshake_failed", "disconnected",  "revoked"};

} // namespace ssegw
