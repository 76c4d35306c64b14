#pragma once
// Where one cluster-mode session stands: a position per channel of the stream, in the session's
// channel order, written into its `id:` lines as a composite cursor (core/cluster_cursor.hpp).
// Allocated only for sessions of a gateway with Redis Cluster history.

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
    bool advance(std::size_t i, const channel_position& at) noexcept;
    /// The client's position in channel i.
    const channel_position& at(std::size_t i) const noexcept { return components_[i].at; }
    std::size_t size() const noexcept { return components_.size(); }

    /// "2:...": the id a client resumes from. Two channels of the stream with the same hash (a
    /// 20-bit collision, ~1 in 1,800 streams with 34 channels) cannot both be named: the later
    /// one is left out, so a resume starts it at its tip with history-truncated.
    std::string format() const;
    /// `id: <format()>\n\n`, built in place: the per-session end of a shared body
    /// (sse/frame_body.hpp).
    frame id_tail() const;

private:
    void append_to(std::string& out) const;

    std::vector<cursor_component> components_;
    std::uint64_t left_out_ = 0; ///< bit i: channel i collides with an earlier one
};

} // namespace ssegw
