#pragma once
// Reconnect delays: capped exponential backoff with full jitter, so a fleet of gateways that
// lost the same Redis does not reconnect in lock-step.

#include <chrono>
#include <cstdint>
#include <random>

namespace ssegw {

/// Delay n (0-based since the last reset) is uniform in [min, min(max, min * 2^n)]. The floor
/// at `min` (rather than 0, as in textbook full jitter) keeps a flapping server from turning
/// reconnects into a busy loop.
class backoff {
public:
    /// `min` is clamped to at least 1 ms and `max` to at least `min`.
    backoff(std::chrono::milliseconds min, std::chrono::milliseconds max);

    /// The next delay to wait; grows the ceiling for the one after.
    std::chrono::milliseconds next();
    /// Back to the smallest ceiling, after a connection succeeded.
    void reset() noexcept;

    /// Current ceiling (the largest value the next call to next() may return).
    std::chrono::milliseconds ceiling() const noexcept;

private:
    std::chrono::milliseconds min_;
    std::chrono::milliseconds max_;
    std::uint32_t attempt_ = 0;
    std::minstd_rand rng_;
};

} // namespace ssegw
