#include "ssegw/core/history.hpp"

#include <algorithm>

namespace ssegw {

history_read merge_history_reads(std::vector<history_read> parts) {
    if (parts.empty()) return {};
    if (parts.size() == 1) return std::move(parts.front());
    history_read out;
    out.ok = true;
    bool first = true;
    for (auto& p : parts) {
        if (!p.ok) return std::move(p);
        // Chunks read one after the other: the earliest tip is covered by every chunk.
        if (first || p.tip.seq < out.tip.seq) out.tip = p.tip;
        first = false;
        out.unknown_position = out.unknown_position || p.unknown_position;
        out.lost = out.lost || p.lost;
        for (auto& t : p.truncated) out.truncated.push_back(std::move(t));
        for (auto& e : p.entries) out.entries.push_back(std::move(e));
    }
    // A later chunk saw events newer than the earliest tip; the live feed (subscribed before any
    // read) carries those for every channel, so keeping them here would let one channel's newer
    // event hide another channel's older one.
    std::erase_if(out.entries,
                  [&](const history_entry& e) { return e.position.seq > out.tip.seq; });
    std::stable_sort(out.entries.begin(), out.entries.end(),
                     [](const history_entry& a, const history_entry& b) {
                         return a.position.seq < b.position.seq;
                     });
    return out;
}

} // namespace ssegw
