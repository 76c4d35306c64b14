#pragma once
// Where one cluster-mode session stands: a position per channel of the stream, in the session's
// channel order, written into its `id:` lines as a composite cursor (core/cluster_cursor.hpp).
// Allocated only for sessions of a gateway with Redis Cluster history.
//
// The id's text is kept, as the complete `id: ...\n\n` tail, and each delivery rewrites only the
// component of the channel that moved (a broadcast moves one of 34): formatting all of them
// every time cost 1.0-1.1 us per delivery for 34 channels, +40 % on a broadcast delivery
// (docs/architecture.md, "Per-session ids"). The text costs the session about 19 bytes per
// channel.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/core/cluster_cursor.hpp"
#include "ssegw/sse/frame.hpp"

namespace ssegw {

class composite_position {
public:
    /// One component per channel, starting at `start` (same size and order as channels).
    composite_position(const std::vector<std::string>& channels,
                       const std::vector<channel_position>& start);

    /// Moves channel i to `at` if that is newer; false for what the client already has.
    bool advance(std::size_t i, const channel_position& at);
    /// The client's position in channel i.
    const channel_position& at(std::size_t i) const noexcept { return components_[i].at; }
    std::size_t size() const noexcept { return components_.size(); }

    /// "2:...": the id a client resumes from, valid until the next advance(). Two channels of
    /// the stream with the same hash (a 20-bit collision, ~1 in 1,800 streams with 34 channels)
    /// cannot both be named: the later one is left out, so a resume starts it at its tip with
    /// history-truncated. So are channels past cluster_cursor::max_components, which no parser
    /// would take back (config keeps streams below it).
    std::string_view id() const noexcept;
    /// `id: <id()>\n\n`: the per-session end of a shared body (sse/frame_body.hpp), a copy of
    /// the kept text.
    frame id_tail() const;

private:
    struct component {
        std::uint32_t hash = 0;
        /// Where "<E>.<s>" of this channel is in tail_; text_size 0: left out of the id.
        std::uint16_t text_at = 0;
        std::uint16_t text_size = 0;
        channel_position at;
    };

    std::vector<component> components_;
    std::string tail_; ///< `id: 2:<h>.<E>.<s>,...\n\n`, at most ~2.1 KB (64 components)
};

} // namespace ssegw
