#pragma once
// The result of reading history for a stream (a resuming client, or the subscriber catching up
// after Redis came back): the events after a position, merged across channels in sequence
// order, and what could not be replayed.

#include <string>
#include <vector>

#include "ssegw/core/cluster_cursor.hpp"
#include "ssegw/core/stream_position.hpp"

namespace ssegw {

struct history_entry {
    std::string channel;      ///< internal name, e.g. "user:42"
    stream_position position; ///< its resume position (epoch, seq, time)
    std::string payload;      ///< as the backend published it
    channel_position at;      ///< cluster mode: the entry's place in its channel's history
};

struct history_read {
    bool ok = false;
    std::string error; ///< why the read failed, when !ok
    /// Where the history stood when it was read: epoch, highest sequence, server time. Every
    /// event of the requested channels up to tip.seq is in `entries` or was before the position.
    stream_position tip;
    /// The position given was from another epoch or ahead of the tip: nothing replayable.
    bool unknown_position = false;
    /// The position is known, but events after it were lost when Redis failed over (a promoted
    /// replica that had not received them): entries hold what exists, the client must be told.
    bool lost = false;
    /// Channels whose events after the position may be partly gone (trimmed or expired).
    std::vector<std::string> truncated;
    /// Events after the position, ascending by position.seq (cluster mode: by channel, each
    /// ascending by `at`).
    std::vector<history_entry> entries;
    /// Cluster mode only, one per requested channel in request order: where the client stood
    /// in it (its cursor component, or the tip when the cursor did not name the channel) and
    /// where the channel's history stood when read. Every entry of the channel after `from` up
    /// to `tip` is in entries.
    std::vector<channel_position> channel_from;
    std::vector<channel_position> channel_tips;
};

/// Merges several reads of disjoint channel sets taken in one go (chunks of a large request):
/// entries re-sorted by sequence, the lowest tip kept (a safe position for all of them) and
/// entries beyond it left to the live feed, which was subscribed before any chunk was read.
history_read merge_history_reads(std::vector<history_read> parts);

} // namespace ssegw
