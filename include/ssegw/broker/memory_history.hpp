#pragma once
// Standalone mode's history: one capped, expiring ring per channel in process memory, with the
// same positions and the same replay and truncation rules as the Redis Functions, so a client
// sees no difference. Owned by the control loop.

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ssegw/core/history.hpp"

namespace ssegw {

/// A fresh epoch per process life (standalone, and Redis Cluster without history): positions
/// from an earlier run are foreign, not reused.
std::string random_epoch();

class memory_history {
public:
    /// epoch: the position epoch of this process's life (random per start in production).
    memory_history(std::uint32_t max_len, std::uint32_t ttl_seconds, std::string epoch);

    /// Appends to a channel's ring and returns the event's position.
    stream_position append(std::string_view channel, std::string payload, std::int64_t now);

    /// What `channels` hold after `from` (nullopt: only the tip).
    history_read read(const std::vector<std::string>& channels,
                      const std::optional<stream_position>& from, std::int64_t now);

    std::size_t channel_count() const noexcept { return streams_.size(); }

private:
    struct entry {
        std::uint64_t seq;
        std::int64_t time;
        std::string payload;
    };
    struct stream {
        std::deque<entry> entries;
        std::uint64_t max_deleted = 0;
    };

    void expire(std::int64_t now);
    bool expired(const stream& s, std::int64_t now) const;

    std::uint32_t max_len_;
    std::uint32_t ttl_;
    std::string epoch_;
    std::uint64_t seq_ = 0;
    std::uint64_t appends_since_sweep_ = 0;
    std::unordered_map<std::string, stream> streams_;
};

} // namespace ssegw
