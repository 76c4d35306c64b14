#pragma once
// The presence library (Redis Functions, separate from the history library): who is connected
// across every instance sharing the Redis, and the online/offline transitions, decided
// atomically inside Redis so that two instances racing never write two `online`s.
//
// Key layout (all in the hash slot of the stream `<prefix>presence`, so one FCALL can touch
// them in Redis Cluster too, and all under `<prefix>` for the README's ACL); B is
// `<prefix>{<prefix>presence}`:
//   <prefix>presence       stream of {type: online|offline, user, at (unix ms)}, capped
//   B:instances            sorted set: instance id -> deadline (unix ms) of its records
//   B:u:<user>             hash: instance id -> that instance's open streams of the user
//   B:i:<instance>         hash: user -> the same count (to sweep a dead instance's users)
//   B:online               set: users announced online and not yet offline
//   B:pending              sorted set: user -> when its offline falls due (unix ms)
// A backend reads presence with `FCALL_RO ssegw_presence_get 1 <prefix>presence <user>...`
// (README "Presence").

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ssegw/redis/resp.hpp"

namespace ssegw {

/// Library name; bump the version when the functions' contract changes.
inline constexpr std::string_view presence_library_name = "ssegw_presence_v1";

/// The Lua library text (no configuration baked in: every setting travels with the call).
std::string_view presence_library_source();

/// `<prefix>presence`, the stream of transitions and the key every presence call declares.
std::string presence_stream_key(std::string_view prefix);
/// `<prefix>lifecycle`, the optional stream of streams opened and closed.
std::string lifecycle_stream_key(std::string_view prefix);

struct presence_apply_args {
    std::string instance;
    std::uint32_t ttl_ms = 0;
    std::uint32_t grace_ms = 0;
    std::uint32_t max_len = 0;
    /// Forget every count this instance had before the ones given (a full report).
    bool reset = false;
};

/// FCALL ssegw_presence_apply 1 <stream> <instance> <ttl_ms> <grace_ms> <max_len> <reset>
///       [<user> <count>]...: this instance now holds `count` streams of each user named
/// (absolute counts: a call repeated after a lost reply changes nothing); also refreshes the
/// instance's deadline, sweeps dead instances and writes the offlines that fell due.
std::vector<std::string>
presence_apply_command(std::string_view prefix, const presence_apply_args& args,
                       const std::vector<std::pair<std::string, std::uint32_t>>& counts);

struct presence_apply_result {
    bool was_known = false; ///< the instance had live records before this call
    std::uint64_t online = 0;
    std::uint64_t offline = 0;
    std::uint64_t instances_swept = 0;
    /// The sweep stopped at its per-call bound: more dead records or due offlines wait.
    bool more = false;
};
std::optional<presence_apply_result> parse_presence_apply_reply(const reply& r);

/// FCALL_RO ssegw_presence_get 1 <stream> <user>...
std::vector<std::string> presence_get_command(std::string_view prefix,
                                              const std::vector<std::string>& users);

struct user_presence {
    std::uint64_t connections = 0;
    std::uint64_t instances = 0;
};
/// One entry per user asked about, in order; nullopt when the reply is not of that shape.
std::optional<std::vector<user_presence>> parse_presence_get_reply(const reply& r,
                                                                   std::size_t users);

/// One stream opened or closed, for the lifecycle stream.
struct lifecycle_entry {
    bool opened = true;
    std::string user;
    std::string topics; ///< comma-separated
    std::string reason; ///< closed only
    std::uint32_t duration_seconds = 0;
};

/// FCALL ssegw_lifecycle_add 1 <prefix>lifecycle <max_len> <instance> (<type> <user> <topics>
/// <reason> <duration>)...
std::vector<std::string> lifecycle_add_command(std::string_view prefix, std::uint32_t max_len,
                                               std::string_view instance,
                                               const std::vector<lifecycle_entry>& entries);

/// FUNCTION LOAD REPLACE <source>
std::vector<std::string> presence_load_command();

} // namespace ssegw
