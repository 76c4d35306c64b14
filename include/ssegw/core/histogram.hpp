#pragma once
// Delivery-latency histogram with fixed buckets. Each shard owns one and is its only writer;
// the metrics scrape reads it from another thread. Counts are relaxed atomics written with a
// plain load+store (no locked read-modify-write on the hot path): with a single writer no update
// is lost, and a scrape only needs each value untorn, not a consistent snapshot of all of them.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace ssegw {

/// Fixed-bucket latency histogram, observed in microseconds, exposed in seconds.
class latency_histogram {
public:
    /// Number of finite buckets; there is one more, for values above the last bound.
    static constexpr std::size_t bucket_count = 12;

    /// Upper bounds (inclusive, Prometheus `le`) of the finite buckets, in seconds.
    static constexpr std::array<double, bucket_count> bounds_seconds = {
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

    /// The same bounds in whole microseconds, so observing needs no floating point.
    static constexpr std::array<std::uint64_t, bucket_count> bounds_us = {
        500, 1'000, 2'500, 5'000, 10'000, 25'000, 50'000, 100'000, 250'000, 500'000,
        1'000'000, 2'500'000};

    latency_histogram() = default;
    latency_histogram(const latency_histogram&) = delete;
    latency_histogram& operator=(const latency_histogram&) = delete;

    /// Records one observation. Only the owning thread may call this (single writer).
    void observe_us(std::uint64_t us) noexcept;

    /// Adds this histogram's counts and sum into out (e.g. summing shards at scrape time).
    /// Safe while the owner keeps observing; out must be owned by the calling thread.
    void merge_into(latency_histogram& out) const noexcept;

    /// Observations in bucket i alone (not cumulative); i == bucket_count is the overflow bucket.
    std::uint64_t bucket(std::size_t i) const noexcept {
        return counts_[i].load(std::memory_order_relaxed);
    }

    /// Total number of observations.
    std::uint64_t count() const noexcept;

    /// Sum of all observations, in microseconds.
    std::uint64_t sum_us() const noexcept { return sum_us_.load(std::memory_order_relaxed); }

private:
    static void add(std::atomic<std::uint64_t>& cell, std::uint64_t n) noexcept {
        cell.store(cell.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }

    std::array<std::atomic<std::uint64_t>, bucket_count + 1> counts_{};
    std::atomic<std::uint64_t> sum_us_{0};
};

} // namespace ssegw
