#include "ssegw/broker/memory_history.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <random>

namespace ssegw {

std::string random_epoch() {
    std::random_device rd;
    const auto v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
                   static_cast<std::uint64_t>(std::time(nullptr));
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

memory_history::memory_history(std::uint32_t max_len, std::uint32_t ttl_seconds, std::string epoch)
    : max_len_(max_len), ttl_(ttl_seconds), epoch_(std::move(epoch)) {}

bool memory_history::expired(const stream& s, std::int64_t now) const {
    // Like a Redis key with EXPIRE refreshed on every append.
    return s.entries.empty() || now - s.entries.back().time >= static_cast<std::int64_t>(ttl_);
}

void memory_history::expire(std::int64_t now) {
    std::erase_if(streams_, [&](const auto& kv) { return expired(kv.second, now); });
}

stream_position memory_history::append(std::string_view channel, std::string payload,
                                       std::int64_t now) {
    // Sweep now and then so channels nobody publishes to any more do not stay in memory.
    if (++appends_since_sweep_ >= 1024) {
        appends_since_sweep_ = 0;
        expire(now);
    }
    auto [it, inserted] = streams_.try_emplace(std::string(channel));
    auto& s = it->second;
    if (!inserted && expired(s, now)) s = stream{}; // a new life for an expired stream
    const auto seq = ++seq_;
    s.entries.push_back({seq, now, std::move(payload)});
    while (s.entries.size() > max_len_) {
        s.max_deleted = s.entries.front().seq;
        s.entries.pop_front();
    }
    return {epoch_, seq, now};
}

history_read memory_history::read(const std::vector<std::string>& channels,
                                  const std::optional<stream_position>& from, std::int64_t now) {
    history_read out;
    out.ok = true;
    out.tip = {epoch_, seq_, now};
    if (!from) return out;
    if (from->epoch != epoch_ || from->seq > seq_) {
        out.unknown_position = true;
        return out;
    }
    const bool aged = now - from->time >= static_cast<std::int64_t>(ttl_);
    for (const auto& ch : channels) {
        auto it = streams_.find(ch);
        if (it == streams_.end() || expired(it->second, now)) {
            if (aged) out.truncated.push_back(ch);
            continue;
        }
        const auto& s = it->second;
        const auto& first = s.entries.front();
        const bool trimmed = s.max_deleted > from->seq;
        const bool recreated =
            first.seq > from->seq && first.time - from->time >= static_cast<std::int64_t>(ttl_);
        if (trimmed || recreated) out.truncated.push_back(ch);
        for (const auto& e : s.entries)
            if (e.seq > from->seq)
                out.entries.push_back({ch, {epoch_, e.seq, e.time}, e.payload, {}});
    }
    std::stable_sort(out.entries.begin(), out.entries.end(),
                     [](const history_entry& a, const history_entry& b) {
                         return a.position.seq < b.position.seq;
                     });
    return out;
}

} // namespace ssegw
