#pragma once
// Transparent hashing for string-keyed maps, so lookups by string_view on the per-event path do
// not build a std::string (one allocation per lookup) just to find a key.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace ssegw {

struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
        return std::hash<std::string_view>{}(s);
    }
};

} // namespace ssegw
