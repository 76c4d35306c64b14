#pragma once
// Fixed-bucket histograms. Each shard owns its own and is their only writer; the metrics scrape
// reads them from another thread. Counts are relaxed atomics written with a plain load+store
// (no locked read-modify-write on the hot path): with a single writer no update is lost, and a
// scrape only needs each value untorn, not a consistent snapshot of all of them.

#include <array>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>

namespace ssegw {

/// Latencies: observed in whole microseconds, exposed in seconds.
struct latency_buckets {
    static constexpr std::array<std::uint64_t, 12> bounds = {
        500,    1'000,   2'500,   5'000,   10'000,    25'000,
        50'000, 100'000, 250'000, 500'000, 1'000'000, 2'500'000};
    static constexpr double unit = 1e6; ///< exposed value = observed / unit
};

/// Sizes (streams reached by one event on one shard): observed and exposed as counts.
struct size_buckets {
    static constexpr std::array<std::uint64_t, 12> bounds = {1,  2,   4,   8,    16,   32,
                                                             64, 128, 256, 1024, 4096, 16384};
    static constexpr double unit = 1;
};

template <class Buckets>
class fixed_histogram {
public:
    /// Number of finite buckets; there is one more, for values above the last bound.
    static constexpr std::size_t bucket_count = Buckets::bounds.size();
    /// Upper bounds (inclusive) in observed units, and as exposed (Prometheus `le`).
    static constexpr auto bounds = Buckets::bounds;
    static constexpr double exposed_bound(std::size_t i) { return bounds[i] / Buckets::unit; }
    static constexpr double unit = Buckets::unit;

    fixed_histogram() = default;
    fixed_histogram(const fixed_histogram&) = delete;
    fixed_histogram& operator=(const fixed_histogram&) = delete;

    /// Records one observation. Only the owning thread may call this (single writer).
    void observe(std::uint64_t v) noexcept {
        std::size_t i = 0;
        while (i < bucket_count && v > bounds[i]) ++i; // 12 compares; most hit the first few
        add(counts_[i], 1);
        add(sum_, v);
    }

    /// Adds this histogram's counts and sum into out (e.g. summing shards at scrape time).
    /// Safe while the owner keeps observing; out must be owned by the calling thread.
    void merge_into(fixed_histogram& out) const noexcept {
        for (std::size_t i = 0; i <= bucket_count; ++i) add(out.counts_[i], bucket(i));
        add(out.sum_, sum());
    }

    /// Observations in bucket i alone (not cumulative); i == bucket_count is the overflow bucket.
    std::uint64_t bucket(std::size_t i) const noexcept {
        return counts_[i].load(std::memory_order_relaxed);
    }

    /// Total number of observations.
    std::uint64_t count() const noexcept {
        std::uint64_t n = 0;
        for (std::size_t i = 0; i <= bucket_count; ++i) n += bucket(i);
        return n;
    }

    /// Sum of all observations, in observed units.
    std::uint64_t sum() const noexcept { return sum_.load(std::memory_order_relaxed); }

    // Latency spellings, kept for readability at call sites.
    // (clang-format 14 cannot lay out requires-clauses; Debian 12 has no newer one.)
    // clang-format off
    void observe_us(std::uint64_t us) noexcept
        requires std::same_as<Buckets, latency_buckets> { observe(us); }
    std::uint64_t sum_us() const noexcept
        requires std::same_as<Buckets, latency_buckets> { return sum(); }
    // clang-format on

private:
    static void add(std::atomic<std::uint64_t>& cell, std::uint64_t n) noexcept {
        cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::array<std::atomic<std::uint64_t>, bucket_count + 1> counts_{};
    std::atomic<std::uint64_t> sum_{0};
};

using latency_histogram = fixed_histogram<latency_buckets>;
using size_histogram = fixed_histogram<size_buckets>;

} // namespace ssegw
