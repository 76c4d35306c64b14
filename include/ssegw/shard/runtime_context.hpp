#pragma once
// What every shard reads but none owns: the configuration and the few process-wide pieces of
// state a handshake consults. Created by the server before the shards start, outlives them.

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ssegw/auth/authenticator.hpp"
#include "ssegw/config/config.hpp"
#include "ssegw/core/history.hpp"
#include "ssegw/shard/user_limiter.hpp"

namespace ssegw {

/// Asks the control loop for a starting stream's history; `deliver` is called there later,
/// `alive` (callable from any thread) tells whether the stream still wants it.
using history_requester = std::function<void(
    std::vector<std::string> channels, std::optional<stream_position> from,
    std::function<void(std::shared_ptr<const history_read>)> deliver,
    std::function<bool()> alive)>;

struct runtime_context {
    const gateway_config& config;
    const authenticator& auth;
    user_limiter& users;
    /// Open streams plus handshakes in progress, all shards: checked against max_connections.
    std::atomic<std::size_t>& connections_total;
    /// Set once on SIGTERM: new requests get "come back later" (200 + retry + close).
    std::atomic<bool>& draining;
    /// Set when history.enabled: every stream starts by reading what it missed.
    history_requester request_history;
};

} // namespace ssegw
