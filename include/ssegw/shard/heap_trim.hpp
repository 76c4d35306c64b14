#pragma once
// Gives the heap a wave of handshakes left behind back to the OS. A handshake allocates a few
// KiB (Beast's stream, parser and buffer, the request's strings) that are freed once the stream
// is live, in between the small blocks of the sessions that stay. glibc returns only the top of
// a heap on its own, so those holes stay in RSS, spread over pages that also hold live blocks;
// malloc_trim(0) hands back every whole free page inside the heaps too (madvise).
//
// Run by the shard's one-second tick, only once a wave is over (a busy shard's freed memory is
// reused by the next handshakes anyway) and at most every few seconds: a trim walks the free
// lists of every arena, milliseconds at most here, not something for every tick.

#include <cstdint>

namespace ssegw {

class heap_trim {
public:
    /// Handshakes (ended either way) since the last trim that make a wave worth trimming.
    static constexpr std::uint64_t min_wave = 256;
    /// A tick with fewer handshakes than this ends the wave.
    static constexpr std::uint64_t quiet_per_tick = 64;
    /// Ticks (seconds) between two trims at least.
    static constexpr std::uint32_t min_interval_ticks = 5;

    /// A handshake ended (a stream opened, or a refusal/failure): counted toward a wave.
    void handshake_done() noexcept { ++handshakes_; }

    /// Once per tick: trims when a wave just ended; true when it did.
    bool on_tick(std::uint32_t tick) noexcept;

    std::uint64_t trims() const noexcept { return trims_; }

private:
    std::uint64_t handshakes_ = 0;
    std::uint64_t at_last_tick_ = 0;
    std::uint64_t at_last_trim_ = 0;
    std::uint32_t last_trim_tick_ = 0;
    std::uint64_t trims_ = 0;
};

} // namespace ssegw
