#include "ssegw/redis/backoff.hpp"

#include <algorithm>

namespace ssegw {

backoff::backoff(std::chrono::milliseconds min, std::chrono::milliseconds max)
    : min_(std::max(min, std::chrono::milliseconds(1))), max_(std::max(max, min_)),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds backoff::ceiling() const noexcept {
    // Doubling stops once past max, so the shift never overflows.
    auto c = min_.count();
    for (std::uint32_t i = 0; i < attempt_ && c < max_.count(); ++i) c *= 2;
    return std::min(std::chrono::milliseconds(c), max_);
}

std::chrono::milliseconds backoff::next() {
    auto hi = ceiling();
    std::uniform_int_distribution<long long> pick(min_.count(), hi.count());
    if (hi < max_) ++attempt_;
    return std::chrono::milliseconds(pick(rng_));
}

void backoff::reset() noexcept { attempt_ = 0; }

} // namespace ssegw
