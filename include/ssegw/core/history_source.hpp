#pragma once
// Where a starting stream's history comes from (the resume service, on the control loop). An
// interface down here so that the shards, which ask, and the broker area, which answers, do not
// depend on each other.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ssegw/core/history.hpp"

namespace ssegw {

class history_source {
public:
    using deliver_fn = std::function<void(std::shared_ptr<const history_read>)>;

    /// Reads what `channels` hold after `from` (only where history stands, without a position);
    /// `deliver` runs on the control loop later, `alive` (callable from any thread) tells
    /// whether the stream still wants it. Called on the control loop.
    virtual void request(std::vector<std::string> channels, std::optional<stream_position> from,
                         deliver_fn deliver, std::function<bool()> alive) = 0;

protected:
    ~history_source() = default;
};

} // namespace ssegw
