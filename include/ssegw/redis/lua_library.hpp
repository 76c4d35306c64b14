#pragma once
// The source text of a Redis Function library with the gateway's settings baked in, shared by
// the single-mode and the cluster history libraries (history_functions,
// cluster_history_functions): the settings are constants of the library, not arguments of every
// call, so the installed code says which settings it was made with.
#include <cstdint>
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

/// "#!lua name=<name>", then PREFIX, MAXLEN and TTL as Lua locals, then `body`.
inline std::string lua_library_source(std::string_view name, std::string_view prefix,
                                      std::uint32_t max_len, std::uint32_t ttl_seconds,
                                      std::string_view body) {
    std::string src = "#!lua name=";
    src += name;
    src += "\nlocal PREFIX = " + lua_literal(prefix);
    src += "\nlocal MAXLEN = " + std::to_string(max_len);
    src += "\nlocal TTL = " + std::to_string(ttl_seconds);
    src += "\n";
    src += body;
    return src;
}

} // namespace ssegw
