#pragma once
// A client's resume position: what the `id:` of a history event says and what a reconnecting
// EventSource sends back as Last-Event-ID. History events get one global sequence number per
// Redis (or per standalone process), so one number covers every channel a client joined:
// "seen everything of my channels up to seq". The epoch changes when that sequence restarts
// (Redis lost its data), so positions from before are recognised as foreign; the time lets the
// gateway tell a position older than the history's time-to-live.
//
// Text form: "<epoch>.<seq>.<unix seconds>", e.g. "6931d2f5a1b2c.1042.1764594933": short,
// printable, free of CR/LF/NUL.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ssegw {

struct stream_position {
    std::string epoch;     ///< 1..24 lowercase hex digits
    std::uint64_t seq = 0; ///< global history sequence; every event <= seq was seen
    std::int64_t time = 0; ///< unix seconds of that event

    std::string format() const;
    /// Parses the text form; nullopt for anything else (foreign ids, junk, overflow).
    static std::optional<stream_position> parse(std::string_view text) noexcept;

    friend bool operator==(const stream_position&, const stream_position&) = default;
};

/// A 32-bit tag of an epoch (FNV-1a), so sessions compare epochs without storing strings.
constexpr std::uint32_t epoch_tag(std::string_view epoch) noexcept {
    std::uint32_t h = 2166136261u;
    for (char c : epoch) {
        h ^= static_cast<unsigned char>(c);
        h *= 16777619u;
    }
    return h;
}

} // namespace ssegw
