#include "ssegw/core/query_string.hpp"

namespace ssegw {

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

} // namespace

std::optional<std::string> percent_decode(std::string_view in, bool plus_as_space) {
    std::string out;
    out.reserve(in.size()); // decoding only ever shrinks
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return std::nullopt; // needs two more characters
            const int hi = hex_value(in[i + 1]);
            const int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        } else if (c == '+' && plus_as_space) {
            c = ' ';
        }
        if (c == '\0') return std::nullopt;
        out.push_back(c);
    }
    return out;
}

std::optional<std::vector<query_param>> parse_query(std::string_view query,
                                                    std::size_t max_params) {
    std::vector<query_param> params;
    std::size_t pieces = 0;
    for (std::string_view rest = query; !rest.empty();) {
        const auto amp = rest.find('&');
        const std::string_view piece = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
        if (piece.empty()) continue;
        if (++pieces > max_params) return std::nullopt;

        const auto eq = piece.find('=');
        auto key = percent_decode(piece.substr(0, eq));
        if (!key) return std::nullopt;
        std::optional<std::string> value;
        if (eq == std::string_view::npos)
            value.emplace();
        else
            value = percent_decode(piece.substr(eq + 1));
        if (!value) return std::nullopt;
        params.push_back({std::move(*key), std::move(*value)});
    }
    return params;
}

request_target split_target(std::string_view target) noexcept {
    if (const auto hash = target.find('#'); hash != std::string_view::npos)
        target = target.substr(0, hash);
    const auto q = target.find('?');
    if (q == std::string_view::npos) return {target, {}};
    return {target.substr(0, q), target.substr(q + 1)};
}

} // namespace ssegw
