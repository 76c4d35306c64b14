#include "ssegw/core/histogram.hpp"

namespace ssegw {

static_assert([] {
    for (std::size_t i = 0; i < latency_histogram::bucket_count; ++i)
        if (latency_histogram::bounds_us[i] !=
            static_cast<std::uint64_t>(latency_histogram::bounds_seconds[i] * 1e6 + 0.5))
            return false;
    return true;
}(), "bounds_us and bounds_seconds must describe the same buckets");

void latency_histogram::observe_us(std::uint64_t us) noexcept {
    std::size_t i = 0;
    while (i < bucket_count && us > bounds_us[i]) ++i;  // 12 compares; most hit the first few
    add(counts_[i], 1);
    add(sum_us_, us);
}

void latency_histogram::merge_into(latency_histogram& out) const noexcept {
    for (std::size_t i = 0; i <= bucket_count; ++i) add(out.counts_[i], bucket(i));
    add(out.sum_us_, sum_us());
}

std::uint64_t latency_histogram::count() const noexcept {
    std::uint64_t n = 0;
    for (std::size_t i = 0; i <= bucket_count; ++i) n += bucket(i);
    return n;
}

} // namespace ssegw
