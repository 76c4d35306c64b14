#pragma once
// The process-wide fan-out point, on the control thread. It knows which shards hold each
// channel (a bitmask per channel, fed by the shards' interest changes), turns every incoming
// payload into one shared frame and posts it only to the shards that need it.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ssegw/sse/frame.hpp"

namespace ssegw {

class shard;

/// Largest number of shards a process runs: one bit each in a channel's mask.
inline constexpr unsigned max_shards = 64;

/// Why an incoming event reached no session; labels on ssegw_events_dropped_total.
enum class route_drop : std::uint8_t {
    too_large, bad_event_name, bad_id, bad_retry, bad_channel, no_local_subscriber, count_
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(route_drop::count_)>
    route_drop_names = {"too_large",  "bad_event_name", "bad_id",
                        "bad_retry",  "bad_channel",    "no_local_subscriber"};

class router {
public:
    /// Called when the process starts or stops needing a channel (first shard in, last out).
    using subscription_change = std::function<void(const std::string& channel, bool wanted)>;

    router(std::vector<shard*> shards, std::size_t max_event_bytes, subscription_change on_change);

    /// A shard gained or lost its last session of a channel. Control thread.
    void on_interest(unsigned shard_id, const std::string& channel, bool held);

    /// Delivers a payload published on an internal channel name. Control thread.
    void route(std::string_view channel, std::string_view payload);

    /// Channels some shard holds right now (what the process must be subscribed to).
    std::vector<std::string> wanted_channels() const;
    std::size_t channel_count() const noexcept { return masks_.size(); }

    std::uint64_t events_received(std::size_t kind) const noexcept {
        return received_[kind].load(std::memory_order_relaxed);
    }
    std::uint64_t dropped(route_drop why) const noexcept {
        return dropped_[static_cast<std::size_t>(why)].load(std::memory_order_relaxed);
    }

private:
    void count_drop(route_drop why) noexcept;

    std::vector<shard*> shards_;
    std::size_t max_event_bytes_;
    subscription_change on_change_;
    std::unordered_map<std::string, std::uint64_t> masks_;
    /// Indexed by channel_kind (user, topic, broadcast).
    std::array<std::atomic<std::uint64_t>, 3> received_{};
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(route_drop::count_)> dropped_{};
};

} // namespace ssegw
