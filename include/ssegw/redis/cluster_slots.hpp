#pragma once
// Redis Cluster's key space: which of the 16384 hash slots a key (or a sharded pub/sub channel)
// lives in, and which shard owns each slot, read from CLUSTER SHARDS. The cluster links route
// every subscription and command with these; nothing here does I/O.

#include "ssegw/redis/resp.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

inline constexpr std::uint16_t cluster_slot_count = 16384;

/// The slot of a key or channel: CRC16 (XMODEM) of its hash tag (the part between the first '{'
/// and the next '}', when that is not empty) or of the whole name, modulo 16384. So
/// `sse:{user:42}` (a stream's key, and its sharded channel) is in the slot of `user:42`.
std::uint16_t key_slot(std::string_view key) noexcept;

/// One node as CLUSTER SHARDS describes it.
struct cluster_node {
    std::string id;
    std::string ip;             ///< "ip" (what a client connects to when no hostname is announced)
    std::string hostname;       ///< "hostname", when the node announces one
    std::uint16_t port = 0;     ///< plain-text port, 0 when the node has none
    std::uint16_t tls_port = 0; ///< TLS port, 0 when the node has none
    bool primary = false;
    bool online = false; ///< health "online" (not "failed" or "loading")
};

struct cluster_shard {
    std::vector<std::pair<std::uint16_t, std::uint16_t>> ranges; ///< inclusive slot ranges
    std::vector<cluster_node> nodes;
    /// The node that is primary, or nullptr (a shard whose primary failed and has no promoted
    /// replica yet).
    const cluster_node* primary() const;
};

/// Which shard owns each slot. Accepted only when every slot is owned by a shard with an
/// online primary: during a failover nodes still name the dead primary for a while, and a map
/// with holes would send commands nowhere.
class cluster_slot_map {
public:
    /// Parses a CLUSTER SHARDS reply (RESP2: each shard a flat field/value list). Returns
    /// nullopt and sets `why` when the reply is malformed or the map is incomplete.
    static std::optional<cluster_slot_map> from_shards_reply(const reply& r, std::string& why);

    const std::vector<cluster_shard>& shards() const { return shards_; }
    /// Index into shards() of the shard owning `slot`.
    std::size_t shard_of_slot(std::uint16_t slot) const { return owner_[slot]; }
    std::size_t shard_of_key(std::string_view key) const { return owner_[key_slot(key)]; }

private:
    std::vector<cluster_shard> shards_;
    std::array<std::uint16_t, cluster_slot_count> owner_{};
};

} // namespace ssegw
