#pragma once
// History in Redis Cluster mode (docs/architecture.md, "History in a cluster"): a second Lua
// library, loaded on every primary that runs one of its functions (replicas get it through
// replication, a node that lacks it gets it on first use). Each channel's history is a stream at
// the channel's own key, `<prefix>{<channel>}`, so the stream, its sequence and its SPUBLISH are
// all in the one slot. Entry ids are `<epoch>-<seq>`: the epoch is the millisecond the epoch
// began, the sequence counts events in it. An entry records which server process wrote it
// (`w`); when the last entry was written by another one (a failover promoted a replica that may
// have missed writes, a restart, a slot migration), the next entry opens a new epoch
// (max(now_ms, previous + 1)) and records the previous epoch and sequence (`pe`, `ps`), so a
// sequence number handed out before is never handed out again for another event.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/core/cluster_cursor.hpp"
#include "ssegw/core/history.hpp"
#include "ssegw/redis/resp.hpp"

namespace ssegw {

/// Registers sse_publish and sse_history like ssegw_v1 (function names are global per node, so
/// the two libraries cannot be loaded on one node: a cluster never has ssegw_v1, which cannot
/// run there).
inline constexpr std::string_view cluster_history_library_name = "ssegw_cluster_v1";

std::string cluster_history_library_source(std::string_view prefix, std::uint32_t max_len,
                                           std::uint32_t ttl_seconds);

/// FCALL sse_publish 1 <prefix>{<channel>} <payload>; replies the entry id "<epoch>-<seq>".
std::vector<std::string> cluster_publish_command(std::string_view prefix, std::string_view channel,
                                                 std::string payload);

/// The published event's place in its channel, from sse_publish's reply; nullopt for anything
/// but "<epoch>-<seq>" in decimal.
std::optional<channel_position> parse_cluster_publish_reply(const reply& r);

/// FCALL sse_history 2 <prefix>{<channel>} <prefix>{<channel>}:lost [<epoch> <seq> [note]]:
/// the channel's tip, and with a position every entry after it and whether something after it
/// is gone. note_routed (a gateway catching up from what it routed): when a failover lost
/// events after a position it routed, record that for later resumes.
std::vector<std::string> cluster_history_command(std::string_view prefix, std::string_view channel,
                                                 const std::optional<channel_position>& from,
                                                 bool note_routed = false);

/// One channel's answer to sse_history.
struct channel_history {
    bool ok = false;
    std::string error;
    channel_position tip;
    bool truncated = false; ///< something after the position is not in the stream any more
    std::vector<history_entry> entries; ///< ascending, channel and `at` set
};

channel_history parse_cluster_history_reply(const reply& r, std::string_view channel);

} // namespace ssegw
