#include "ssegw/auth/cookie.hpp"
#include "ssegw/core/text.hpp"

namespace ssegw {

std::optional<std::string_view> find_cookie(std::string_view header,
                                            std::string_view name) noexcept {
    if (name.empty()) return std::nullopt;
    while (!header.empty()) {
        std::size_t semi = header.find(';');
        std::string_view pair = header.substr(0, semi);
        header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);

        std::size_t eq = pair.find('=');
        // A pair without '=' is not a cookie we can use; skip it rather than give up, so one
        // malformed cookie set by some other app on the domain does not hide ours.
        if (eq == std::string_view::npos) continue;
        if (trim_ows(pair.substr(0, eq)) != name) continue;

        std::string_view value = trim_ows(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
            value = value.substr(1, value.size() - 2);
        return value;
    }
    return std::nullopt;
}

} // namespace ssegw
