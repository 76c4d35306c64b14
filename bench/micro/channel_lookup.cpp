// Cost of one channel-name lookup on the per-event path, warm and cold, for the two map types
// the gateway could use: std::unordered_map (node based) and boost::unordered_flat_map (open
// addressing, what include/ssegw/core/string_map.hpp picks). A unicast event reaches the
// gateway with its caches cold (other processes ran since the last event), so the cold figure is
// the one that counts: before each cold lookup 8 MiB are touched to evict the map from cache.
//
//   bench/.build/channel_lookup [channels=5000] [lookups=20000]
// Prints one line per map type: ns per lookup, warm and cold (mean; includes ~20-40 ns of clock
// reads, the same for both).

#include <boost/unordered/unordered_flat_map.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

template <class Map>
double ns_per_lookup(const std::vector<std::string>& keys, std::size_t lookups, bool cold) {
    Map m;
    for (std::size_t i = 0; i < keys.size(); ++i) m.emplace(keys[i], i);
    std::mt19937 rng(1);
    std::vector<char> junk(8u << 20);
    double total_ns = 0;
    std::uint64_t sink = 0;
    for (std::size_t i = 0; i < lookups; ++i) {
        if (cold)
            for (std::size_t j = 0; j < junk.size(); j += 64) junk[j] = static_cast<char>(junk[j] + 1);
        const std::string_view k = keys[rng() % keys.size()];
        const auto t0 = std::chrono::steady_clock::now();
        sink += m.find(k)->second;
        total_ns += std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
    }
    if (sink == 1) std::puts("");  // keeps the lookups
    return total_ns / static_cast<double>(lookups);
}

} // namespace

int main(int argc, char** argv) {
    const std::size_t channels = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 5000;
    const std::size_t lookups = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 20000;
    if (channels == 0 || lookups == 0) return 2;
    std::vector<std::string> keys;
    for (std::size_t i = 0; i < channels; ++i) keys.push_back("user:u" + std::to_string(i));
    using node_map = std::unordered_map<std::string, std::uint64_t, string_hash, std::equal_to<>>;
    using flat_map = boost::unordered_flat_map<std::string, std::uint64_t, string_hash, std::equal_to<>>;
    std::printf("channels %zu, lookups %zu\n", channels, lookups);
    std::printf("std::unordered_map         warm %7.1f ns  cold %7.1f ns\n",
                ns_per_lookup<node_map>(keys, lookups, false), ns_per_lookup<node_map>(keys, lookups, true));
    std::printf("boost::unordered_flat_map  warm %7.1f ns  cold %7.1f ns\n",
                ns_per_lookup<flat_map>(keys, lookups, false), ns_per_lookup<flat_map>(keys, lookups, true));
    return 0;
}
