// Log-bucketed latency histogram (HdrHistogram-like): 64 linear sub-buckets per power of two,
// so every recorded value is kept within ~1.6% of its true value, from 1 ns to 2^63 ns.
#pragma once
#include <array>
#include <bit>
#include <cstdint>
#include <string>

namespace bench {

class histogram {
public:
    static constexpr int sub_bits = 6;
    static constexpr int sub = 1 << sub_bits;          // 64
    static constexpr int buckets = (64 - sub_bits) * sub + sub;  // 3776

    static int index_of(uint64_t v) {
        if (v < 2 * sub) return static_cast<int>(v);
        int msb = 63 - std::countl_zero(v);
        int shift = msb - sub_bits;
        uint64_t s = v >> shift;  // in [64, 128)
        return (shift + 1) * sub + static_cast<int>(s - sub);
    }
    // Midpoint of the bucket.
    static uint64_t value_of(int idx) {
        if (idx < 2 * sub) return static_cast<uint64_t>(idx);
        int shift = idx / sub - 1;
        uint64_t s = static_cast<uint64_t>(idx % sub + sub);
        return (s << shift) + ((uint64_t{1} << shift) >> 1);
    }

    void record(int64_t v) {
        if (v < 0) { ++negative_; v = 0; }
        ++counts_[index_of(static_cast<uint64_t>(v))];
        ++total_;
        if (static_cast<uint64_t>(v) > max_) max_ = static_cast<uint64_t>(v);
        sum_ += static_cast<double>(v);
    }
    void add(int idx, uint64_t n) {
        counts_[idx] += n;
        total_ += n;
        uint64_t v = value_of(idx);
        if (v > max_) max_ = v;
        sum_ += static_cast<double>(v) * static_cast<double>(n);
    }
    void merge(const histogram& o) {
        for (int i = 0; i < buckets; ++i) counts_[i] += o.counts_[i];
        total_ += o.total_;
        negative_ += o.negative_;
        if (o.max_ > max_) max_ = o.max_;
        sum_ += o.sum_;
    }
    uint64_t total() const { return total_; }
    uint64_t negative() const { return negative_; }
    uint64_t max() const { return max_; }
    double mean() const { return total_ ? sum_ / static_cast<double>(total_) : 0.0; }
    uint64_t percentile(double p) const {
        if (!total_) return 0;
        uint64_t want = static_cast<uint64_t>(p / 100.0 * static_cast<double>(total_));
        if (want >= total_) want = total_ - 1;
        uint64_t seen = 0;
        for (int i = 0; i < buckets; ++i) {
            seen += counts_[i];
            if (seen > want) return value_of(i);
        }
        return max_;
    }
    // Sparse text form "idx:count idx:count ..." for passing between processes.
    std::string serialize() const {
        std::string s;
        for (int i = 0; i < buckets; ++i)
            if (counts_[i]) { s += std::to_string(i); s += ':'; s += std::to_string(counts_[i]); s += ' '; }
        return s;
    }

private:
    std::array<uint64_t, buckets> counts_{};
    uint64_t total_ = 0, negative_ = 0, max_ = 0;
    double sum_ = 0;
};

}  // namespace bench
