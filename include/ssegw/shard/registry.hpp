#pragma once
// Per-shard index: channel name -> the sessions of this shard that joined it. Owned and touched
// by one shard thread only, so no locking.

#include <cstddef>
#include <string>
#include <string_view>

#include "ssegw/core/string_map.hpp"
#include "ssegw/shard/session_list.hpp"

namespace ssegw {

class session;

class registry {
public:
    /// Adds s to channel; returns true when the channel was not held on this shard before
    /// (the process may need to subscribe to it).
    bool add(std::string_view channel, session* s);

    /// Removes s from channel; returns true when no session of this shard holds it any more.
    bool remove(std::string_view channel, session* s);

    /// The sessions of a channel, or nullptr when none.
    const session_list* find(std::string_view channel) const;

    std::size_t channel_count() const noexcept { return by_channel_.size(); }

private:
    string_map<session_list> by_channel_;
};

} // namespace ssegw
