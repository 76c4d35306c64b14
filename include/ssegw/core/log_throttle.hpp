#pragma once
// At most one log line per interval for a recurring condition (a dropped payload, a refused
// request), reporting how many occurred since the last line: junk on a channel must not turn
// into a flood of log lines.

#include <chrono>
#include <cstdint>

namespace ssegw {

class log_throttle {
public:
    log_throttle() = default;
    explicit log_throttle(std::chrono::steady_clock::duration interval) : interval_(interval) {}

    /// Counts one occurrence. Returns the number of occurrences to report when a line is due
    /// now (this one included), else 0.
    std::uint64_t hit(std::chrono::steady_clock::time_point now) noexcept {
        ++pending_;
        if (logged_once_ && now - last_ < interval_) return 0;
        logged_once_ = true;
        last_ = now;
        const auto n = pending_;
        pending_ = 0;
        return n;
    }

private:
    std::chrono::steady_clock::duration interval_ = std::chrono::seconds(10);
    std::chrono::steady_clock::time_point last_{};
    std::uint64_t pending_ = 0;
    bool logged_once_ = false;
};

} // namespace ssegw
