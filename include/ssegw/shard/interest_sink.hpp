#pragma once
// Where the shards' channel interest ends up: the router's shard masks, on the control loop.

#include <string>

namespace ssegw {

class interest_sink {
public:
    /// Shard `shard_id` gained its first (held) or lost its last (!held) session of `channel`.
    virtual void on_interest(unsigned shard_id, const std::string& channel, bool held) = 0;

protected:
    ~interest_sink() = default;
};

} // namespace ssegw
