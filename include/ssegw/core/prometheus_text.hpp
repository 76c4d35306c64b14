#pragma once
// Writer for the Prometheus text exposition format (version 0.0.4), used by GET /metrics.
// Samples are grouped per metric name whatever order they are added in, because the format
// requires each family to be one contiguous block under a single HELP/TYPE pair.

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/core/histogram.hpp"

namespace ssegw {

/// Builds one scrape's text. `labels` are passed preformatted without braces, e.g.
/// `shard="0"` or `shard="0",reason="slow_consumer"`; empty means no labels. Names and labels
/// are trusted (they come from the code, not from clients); HELP text is escaped.
class prometheus_text {
public:
    /// One counter sample. HELP/TYPE are written once per name; later help text is ignored.
    void counter(std::string_view name, std::string_view help, std::uint64_t value,
                 std::string_view labels = {});

    /// One gauge sample (NaN and infinities are written as NaN, +Inf, -Inf).
    void gauge(std::string_view name, std::string_view help, double value,
               std::string_view labels = {});

    /// One gauge sample with an integer value, written exactly.
    void gauge(std::string_view name, std::string_view help, std::int64_t value,
               std::string_view labels = {});

    /// Other integer types (int, std::size_t, ...) go to the integer overload instead of
    /// being ambiguous between int64_t and double.
    // clang-format off (clang-format 14 cannot lay out requires-clauses)
    template <std::integral T>
    requires(!std::same_as<T, std::int64_t>) void gauge(std::string_view name,
                                                        std::string_view help, T value,
                                                        std::string_view labels = {}) {
        gauge(name, help, static_cast<std::int64_t>(value), labels);
    }
    // clang-format on

    /// A histogram: cumulative `<name>_bucket{le="..."}` lines ending with `le="+Inf"`, then
    /// `<name>_sum` (in exposed units: seconds for latencies) and `<name>_count`. `+Inf` equals
    /// `_count` even while the owning shard keeps observing: both come from the same read of
    /// the buckets.
    template <class Buckets>
    void histogram(std::string_view name, std::string_view help, const fixed_histogram<Buckets>& h,
                   std::string_view labels = {}) {
        std::array<std::uint64_t, fixed_histogram<Buckets>::bucket_count + 1> counts;
        std::array<double, fixed_histogram<Buckets>::bucket_count> bounds;
        for (std::size_t i = 0; i < counts.size(); ++i) counts[i] = h.bucket(i);
        for (std::size_t i = 0; i < bounds.size(); ++i) bounds[i] = h.exposed_bound(i);
        histogram_lines(name, help, bounds.data(), counts.data(), bounds.size(),
                        static_cast<double>(h.sum()) / h.unit, labels);
    }

    /// The finished exposition text.
    std::string str() &&;

private:
    void histogram_lines(std::string_view name, std::string_view help, const double* bounds,
                         const std::uint64_t* counts, std::size_t finite_buckets, double sum,
                         std::string_view labels);

    struct family {
        std::string name;
        std::string text; ///< HELP, TYPE, then this family's samples
    };

    std::string& family_text(std::string_view name, std::string_view help, std::string_view type);

    std::vector<family> families_;
};

} // namespace ssegw
