#pragma once
// Resume positions in Redis Cluster mode (docs/architecture.md, "History in a cluster"). Each
// channel keeps its own history (a stream in the channel's slot) with its own epoch and
// sequence, so a client's position is one (epoch, seq) per channel of its stream: a composite
// cursor. Text form, what `id:` carries and Last-Event-ID brings back:
//
//   2:<h>.<E>.<s>,<h>.<E>.<s>,...
//
// h: a 20-bit hash of the channel name, E: the channel's epoch (milliseconds since 1970 when it
// began), s: the sequence in it; all lowercase base36 without leading zeros. With epochs of today
// (8 digits) and sequences below 36^4 (1.7 million) a component takes at most 19 bytes with its
// comma: a stream with 34 channels (user, broadcast, 32 topics) has an id of at most 648 bytes,
// one with 3 channels 59. The parser accepts any 64-bit E and s (4 + 1 + 13 + 1 + 13 + 1 = 33
// bytes) and at most max_components (sse.max_topics <= 62 in cluster mode): max_text_bytes.

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

/// Where one channel's history stands: (0, 0) is "before any event". Positions of one channel
/// are ordered by epoch, then sequence: a new epoch starts later than the one it follows (the
/// Lua library picks max(now_ms, previous + 1)).
struct channel_position {
    std::uint64_t epoch = 0;
    std::uint64_t seq = 0;
    friend auto operator<=>(const channel_position&, const channel_position&) = default;
};

/// 20-bit FNV-1a of a channel name: how a cursor component names its channel.
std::uint32_t cursor_hash(std::string_view channel) noexcept;

struct cursor_component {
    std::uint32_t hash = 0; ///< cursor_hash of the channel, < 2^20
    channel_position at;
    friend bool operator==(const cursor_component&, const cursor_component&) = default;
};

struct cluster_cursor {
    static constexpr std::size_t max_components = 64;
    static constexpr std::size_t max_text_bytes = 2 + max_components * 33 - 1;

    std::vector<cursor_component> components;

    /// "2:..." in the order of components.
    std::string format() const;
    /// Parses the text form. nullopt for anything else: single-mode ids, junk, a number that is
    /// not canonical base36 or overflows, a hash >= 2^20, more than max_components, the same
    /// hash twice, or an empty list.
    static std::optional<cluster_cursor> parse(std::string_view text) noexcept;
    /// The component of `hash`, if any.
    const channel_position* find(std::uint32_t hash) const noexcept;
};

/// Appends "<h>.<E>.<s>" (no separator) to out.
void append_component(std::string& out, const cursor_component& c);

/// Longest "<E>.<s>" text: two 64-bit numbers in base36 and the dot.
inline constexpr std::size_t max_position_text = 13 + 1 + 13;
/// Writes "<E>.<s>" (the part of a component that moves) to out, which has room for
/// max_position_text bytes; returns its length. No allocation: a session rewrites this part of
/// its cached id on every delivery (shard/composite_position.hpp).
std::size_t write_position(char* out, const channel_position& at) noexcept;

/// The envelope the cluster library's sse_publish puts on SPUBLISH:
/// "\x1e" "2:" <E> "." <s> "\n" <payload>, E and s base36.
struct cluster_envelope {
    channel_position at;
    std::string_view payload;
};
std::optional<cluster_envelope> parse_cluster_envelope(std::string_view message) noexcept;

/// Canonical lowercase base36 (what the Lua library and the cursor write).
std::string to_base36(std::uint64_t v);
std::optional<std::uint64_t> from_base36(std::string_view s) noexcept;

} // namespace ssegw
