#pragma once
// What a broker hands its events to (the router): a narrow interface, so the broker knows
// nothing of shards. Everything here runs on the control loop.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/core/history.hpp"
#include "ssegw/core/stream_position.hpp"

namespace ssegw {

class event_sink {
public:
    /// A message from the live feed on an internal channel name: enveloped (history) or plain.
    virtual void route(std::string_view channel, std::string_view message) = 0;
    /// A history event: routed once, in sequence order, with its position as the `id:`.
    virtual void route_history(std::string_view channel, const stream_position& position,
                               std::string_view id_text, std::string_view payload) = 0;
    /// The unit of work ended (a read burst, a publish, a catch-up): hand over what was routed.
    virtual void flush() = 0;

    // ---- catching up after the live feed was lost ----

    /// From now on history events are held back until finish_catch_up().
    virtual void begin_catch_up() = 0;
    virtual bool catching_up() const noexcept = 0;
    /// Routes what history holds after position(), then what was held back and is newer.
    /// Returns false when events had to be dropped meanwhile: catch up once more.
    virtual bool finish_catch_up(const history_read& read) = 0;
    /// Where the process stands: every history event of its channels up to here was routed.
    virtual const std::optional<stream_position>& position() const noexcept = 0;
    /// Sets the position when none is known yet (start-up): nothing older is owed to anyone.
    virtual void adopt_position(const stream_position& tip) = 0;
    /// Channels some shard holds right now (what the process must be subscribed to).
    virtual std::vector<std::string> wanted_channels() const = 0;

    // ---- Redis Cluster history: positions per channel (core/cluster_cursor.hpp) ----

    /// A history event of one channel, at `at` in that channel's history: routed at most once
    /// per channel, with each session's own composite cursor as its `id:`.
    virtual void route_channel_history(std::string_view channel, const channel_position& at,
                                       std::string_view payload) {}
    /// The channel's subscription was (re)confirmed: hold its history events until
    /// finish_channel_catch_up(). Returns how far the process had routed it (nullopt: nothing
    /// yet, or the channel is not held; then only its tip needs reading).
    virtual std::optional<channel_position> begin_channel_catch_up(std::string_view channel) {
        return std::nullopt;
    }
    /// Routes `entries` (what the channel holds after the position begin_channel_catch_up gave),
    /// then what was held; with `truncated`, first tells the channel's sessions that events
    /// were lost (a failover). tip: where the channel's history stood.
    virtual void finish_channel_catch_up(std::string_view channel,
                                         const std::vector<history_entry>& entries,
                                         const channel_position& tip, bool truncated) {}
    /// The catch-up read failed: release what was held (the next confirmation catches up).
    virtual void abandon_channel_catch_up(std::string_view channel) {}

protected:
    ~event_sink() = default;
};

} // namespace ssegw
