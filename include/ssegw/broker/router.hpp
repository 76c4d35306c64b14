#pragma once
// The process-wide fan-out point, on the control loop. It knows which shards hold each
// channel (a bitmask per channel, fed by the shards' interest changes), turns every incoming
// payload into one shared frame and hands it only to the shards that need it — batched:
// route(), route_history() and finish_catch_up() only queue, and the caller flush()es when its
// unit of work ends (a subscriber read burst, a publish, a catch-up). A burst of events then
// costs each shard one wake-up, not one per event.
//
// History events (published through sse_publish) carry a global sequence number and arrive in
// that order on the one subscriber connection; the router routes each at most once and remembers
// the last one, which is where it catches up from after the live feed was lost.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/config/config.hpp" // max_shards
#include "ssegw/core/history.hpp"
#include "ssegw/core/log_throttle.hpp"
#include "ssegw/core/stream_position.hpp"
#include "ssegw/core/string_map.hpp"
#include "ssegw/sse/frame.hpp"
#include "ssegw/sse/routed_event.hpp"

namespace ssegw {

/// Why an incoming event reached no session; labels on ssegw_events_dropped_total.
enum class route_drop : std::uint8_t {
    too_large, bad_event_name, bad_id, bad_retry, bad_channel, no_local_subscriber,
    duplicate, catch_up_overflow, count_
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(route_drop::count_)>
    route_drop_names = {"too_large",   "bad_event_name",      "bad_id",
                        "bad_retry",   "bad_channel",         "no_local_subscriber",
                        "duplicate",   "catch_up_overflow"};

class router {
public:
    /// Called when the process starts or stops needing a channel (first shard in, last out).
    using subscription_change = std::function<void(const std::string& channel, bool wanted)>;
    /// Hands a batch of events, in routing order, to one shard (the server posts it to that
    /// shard's loop).
    using dispatch_fn = std::function<void(unsigned shard_id, std::vector<routed_event_ptr> batch)>;
    router(std::size_t max_event_bytes, dispatch_fn dispatch, subscription_change on_change);

    /// Dispatches what was routed since the last flush: one batch per shard, in routing order.
    void flush();

    /// A shard gained or lost its last session of a channel.
    void on_interest(unsigned shard_id, const std::string& channel, bool held);

    /// A message from the live feed on an internal channel name: enveloped (history) or plain.
    void route(std::string_view channel, std::string_view message);

    /// A history event: routed once, in sequence order, with its position as the `id:`.
    void route_history(std::string_view channel, const stream_position& position,
                       std::string_view id_text, std::string_view payload);

    // ---- catching up after the live feed was lost ----

    /// From now on history events are held back until finish_catch_up().
    void begin_catch_up();
    bool catching_up() const noexcept { return catching_up_; }
    /// Routes what history holds after position(), then what was held back and is newer.
    /// Returns false when events had to be dropped meanwhile: catch up once more.
    bool finish_catch_up(const history_read& read);
    /// Where the process stands: every history event of its channels up to here was routed.
    const std::optional<stream_position>& position() const noexcept { return position_; }
    /// Sets the position when none is known yet (start-up): nothing older is owed to anyone.
    void adopt_position(const stream_position& tip);

    /// Channels some shard holds right now (what the process must be subscribed to).
    std::vector<std::string> wanted_channels() const;
    std::size_t channel_count() const noexcept { return masks_.size(); }

    std::uint64_t events_received(std::size_t kind) const noexcept {
        return received_[kind].load(std::memory_order_relaxed);
    }
    std::uint64_t dropped(route_drop why) const noexcept {
        return dropped_[static_cast<std::size_t>(why)].load(std::memory_order_relaxed);
    }
    std::uint64_t caught_up_events() const noexcept {
        return caught_up_.load(std::memory_order_relaxed);
    }

private:
    struct held_event {
        std::string channel;
        stream_position position;
        std::string id_text;
        std::string payload;
    };

    /// Queues one shared event for every shard in mask, until flush().
    void deliver(std::string_view channel, std::uint64_t mask, frame_result built,
                 std::uint64_t seq, std::uint32_t epoch, frame position);
    /// Counts a drop and, at most every 10 s per reason, logs it with the channel.
    void count_drop(route_drop why, std::string_view channel = {}) noexcept;
    static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::size_t max_event_bytes_;
    dispatch_fn dispatch_;
    subscription_change on_change_;
    /// Routed, not yet dispatched, per shard; pending_shards_ has a bit for each non-empty one.
    std::array<std::vector<routed_event_ptr>, max_shards> pending_;
    std::uint64_t pending_shards_ = 0;
    string_map<std::uint64_t> masks_;
    std::optional<stream_position> position_;
    bool catching_up_ = false;
    bool held_overflow_ = false;
    std::vector<held_event> held_;
    std::size_t held_bytes_ = 0;
    /// Indexed by channel_kind (user, topic, broadcast).
    std::array<std::atomic<std::uint64_t>, 3> received_{};
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(route_drop::count_)> dropped_{};
    std::atomic<std::uint64_t> caught_up_{0};
    std::array<log_throttle, static_cast<std::size_t>(route_drop::count_)> drop_log_;
};

} // namespace ssegw
