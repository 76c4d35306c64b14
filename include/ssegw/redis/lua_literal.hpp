#pragma once
// A Lua string literal for arbitrary bytes, for values (the key prefix) baked into the Redis
// Function libraries' source (history_functions, cluster_history_functions).
#include <string>
#include <string_view>

namespace ssegw {

/// Every byte outside a safe set as a decimal escape, so no prefix can break out of the literal.
inline std::string lua_literal(std::string_view s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
            c == '_' || c == '-' || c == '.') {
            out += static_cast<char>(c);
        } else {
            out += '\\';
            out += std::to_string(c);
        }
    }
    out += '"';
    return out;
}

} // namespace ssegw
