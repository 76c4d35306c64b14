#pragma once
// The process-wide fan-out point, on the control loop, between the broker (its event sink) and
// the shard set (its batch sink). It knows which shards hold each channel (a bitmask per
// channel, fed by the shards' interest changes, which also decide what the broker subscribes
// to), turns every incoming payload into one shared frame and hands it only to the shards that
// need it — batched: route(), route_history() and finish_catch_up() only queue, and the broker
// flush()es when its unit of work ends (a subscriber read burst, a publish, a catch-up). A
// burst of events then costs each shard one wake-up, not one per event.
//
// History events (published through sse_publish) carry a global sequence number and arrive in
// that order on the one subscriber connection; the router routes each at most once and remembers
// the last one, which is where it catches up from after the live feed was lost.

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/broker/event_sink.hpp"
#include "ssegw/config/config.hpp" // max_shards
#include "ssegw/core/history.hpp"
#include "ssegw/core/log_throttle.hpp"
#include "ssegw/core/stream_position.hpp"
#include "ssegw/core/string_map.hpp"
#include "ssegw/shard/interest_sink.hpp"
#include "ssegw/sse/frame.hpp"
#include "ssegw/sse/routed_event.hpp"

namespace ssegw {

class batch_sink;
class broker;

/// Why an incoming event reached no session; labels on ssegw_events_dropped_total.
enum class route_drop : std::uint8_t {
    too_large,
    bad_event_name,
    bad_id,
    bad_retry,
    bad_channel,
    no_local_subscriber,
    duplicate,
    catch_up_overflow,
    count_
};

inline constexpr std::array<std::string_view, static_cast<std::size_t>(route_drop::count_)>
    route_drop_names = {"too_large",   "bad_event_name",      "bad_id",    "bad_retry",
                        "bad_channel", "no_local_subscriber", "duplicate", "catch_up_overflow"};

class router final : public event_sink, public interest_sink {
public:
    /// Batches go to `shards`; `subscriptions` is told when the process starts or stops needing
    /// a channel (first shard in, last out).
    router(std::size_t max_event_bytes, batch_sink& shards, broker& subscriptions);

    /// Delivers what was routed since the last flush: one batch per shard, in routing order.
    void flush() override;

    /// A shard gained or lost its last session of a channel.
    void on_interest(unsigned shard_id, const std::string& channel, bool held) override;

    void route(std::string_view channel, std::string_view message) override;
    void route_history(std::string_view channel, const stream_position& position,
                       std::string_view id_text, std::string_view payload) override;

    void begin_catch_up() override;
    bool catching_up() const noexcept override { return catching_up_; }
    bool finish_catch_up(const history_read& read) override;
    const std::optional<stream_position>& position() const noexcept override { return position_; }
    void adopt_position(const stream_position& tip) override;
    std::vector<std::string> wanted_channels() const override;
    std::size_t channel_count() const noexcept { return masks_.size(); }

    void route_channel_history(std::string_view channel, const channel_position& at,
                               std::string_view payload) override;
    std::optional<channel_position> begin_channel_catch_up(std::string_view channel) override;
    void finish_channel_catch_up(std::string_view channel,
                                 const std::vector<history_entry>& entries,
                                 const channel_position& tip, bool truncated) override;
    void abandon_channel_catch_up(std::string_view channel) override;

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

    /// Redis Cluster history: per channel, how far it was routed, and what waits while its
    /// subscription's catch-up read runs (only channels some shard holds have one).
    struct channel_state {
        channel_position last;
        bool known = false;   ///< last is set: routed, or the tip read after subscribing
        bool holding = false; ///< a catch-up read is running
        bool overflow = false;
        std::vector<std::pair<channel_position, std::string>> held;
    };
    /// Delivers one cluster history event (per-session ids) to the shards in mask.
    void deliver_channel_history(std::string_view channel, std::uint64_t mask,
                                 const channel_position& at, std::string_view payload);
    void release_held(std::string_view channel, channel_state& st);

    /// Moves position_ on, telling the broker when the epoch changes.
    void advance_to(const stream_position& next);
    /// Queues one shared event for every shard in mask, until flush().
    void deliver(std::string_view channel, std::uint64_t mask, frame_result built,
                 std::uint64_t seq, std::uint32_t epoch, frame position);
    /// Counts a drop and, at most every 10 s per reason, logs it with the channel.
    void count_drop(route_drop why, std::string_view channel = {}) noexcept;
    static void bump(std::atomic<std::uint64_t>& c, std::uint64_t n = 1) noexcept {
        c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::size_t max_event_bytes_;
    batch_sink& shards_;
    broker& subscriptions_;
    /// Routed, not yet dispatched, per shard; pending_shards_ has a bit for each non-empty one.
    std::array<std::vector<routed_event_ptr>, max_shards> pending_;
    std::uint64_t pending_shards_ = 0;
    string_map<std::uint64_t> masks_;
    std::optional<stream_position> position_;
    bool catching_up_ = false;
    bool held_overflow_ = false;
    std::vector<held_event> held_;
    string_map<channel_state> channel_states_;
    std::size_t held_bytes_ = 0;
    /// Indexed by channel_kind (user, topic, broadcast).
    std::array<std::atomic<std::uint64_t>, 3> received_{};
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(route_drop::count_)> dropped_{};
    std::atomic<std::uint64_t> caught_up_{0};
    std::array<log_throttle, static_cast<std::size_t>(route_drop::count_)> drop_log_;
};

} // namespace ssegw
