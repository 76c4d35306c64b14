#pragma once
// The map type for name keys on the per-event path and in per-stream tables (the router's shard
// masks, each shard's registry, the Redis subscriber's channels, presence's user counts).
//
// - Transparent hashing: lookups by string_view do not build a string (one allocation per
//   lookup) just to find a key.
// - Open addressing (boost::unordered_flat_map, Boost >= 1.81): a unicast event arrives to cold
//   caches, and a lookup then costs its cache misses. std::unordered_map walks bucket -> node
//   before -> node; the flat map reads one metadata group and one slot, with short names inline
//   (SSO). bench/micro/channel_lookup: a cold lookup among 5,000 channels 1,080 -> 551 ns.
//   Inserting may move the elements: never keep a reference across an insert.
// - The key is string_key, not std::string: with every stream a different user these tables
//   hold an entry per stream, and each slot is counted ~1.6 times over at a flat map's load
//   factor (docs/benchmarks.md, "Memory per idle stream").

#include <cstddef>
#include <functional>
#include <string_view>

#include <boost/container/string.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

namespace ssegw {

/// A map key string: boost::container::string is 24 bytes and keeps up to 22 bytes inline, where
/// libstdc++'s std::string takes 32 and keeps 15 ("sse:user:u100000", 16 bytes, would take a
/// heap block of its own). Made with make_key(), read back as a view with key_view().
using string_key = boost::container::string;

inline string_key make_key(std::string_view s) { return string_key(s.data(), s.size()); }
inline std::string_view key_view(const string_key& k) noexcept { return {k.data(), k.size()}; }

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
    std::size_t operator()(const string_key& s) const noexcept { return (*this)(key_view(s)); }
};

/// Equality between keys and the string_views (or std::strings) they are looked up by.
struct string_equal {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
    bool operator()(const string_key& a, std::string_view b) const noexcept {
        return key_view(a) == b;
    }
    bool operator()(std::string_view a, const string_key& b) const noexcept {
        return a == key_view(b);
    }
    bool operator()(const string_key& a, const string_key& b) const noexcept { return a == b; }
};

template <class Value>
using string_map = boost::unordered_flat_map<string_key, Value, string_hash, string_equal>;

} // namespace ssegw
