#pragma once
// The map type for channel-name keys on the per-event path (the router's shard masks, each
// shard's registry).
//
// - Transparent hashing: lookups by string_view do not build a std::string (one allocation per
//   lookup) just to find a key.
// - Open addressing (boost::unordered_flat_map, Boost >= 1.81): a unicast event arrives to cold
//   caches, and a lookup then costs its cache misses. std::unordered_map walks bucket -> node
//   before -> node; the flat map reads one metadata group and one slot, with short names inline
//   (SSO). bench/micro/channel_lookup: a cold lookup among 5,000 channels 1,080 -> 551 ns.
//   Inserting may move the elements: never keep a reference across an insert.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include <boost/unordered/unordered_flat_map.hpp>

namespace ssegw {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

template <class Value>
using string_map = boost::unordered_flat_map<std::string, Value, string_hash, std::equal_to<>>;

} // namespace ssegw
