#pragma once
// How routed events reach a shard: one batch per shard per unit of work. The shard set is the
// one implementation (invoke_on); the router's tests observe batches through it.

#include <vector>

#include "ssegw/sse/routed_event.hpp"

namespace ssegw {

class batch_sink {
public:
    /// Hands `batch` (in routing order) to shard `shard_id`: in place when called on its
    /// thread, else posted once.
    virtual void deliver(unsigned shard_id, std::vector<routed_event_ptr> batch) = 0;

protected:
    ~batch_sink() = default;
};

} // namespace ssegw
