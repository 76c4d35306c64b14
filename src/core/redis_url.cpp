#include "ssegw/core/redis_url.hpp"

#include <stdexcept>

#include "ssegw/core/text.hpp"

namespace ssegw {

namespace {

[[noreturn]] void bad(std::string_view why) {
    throw std::invalid_argument("invalid redis URL: " + std::string(why));
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) bad("truncated percent escape in credentials");
        int hi = hex_value(in[i + 1]), lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0) bad("bad percent escape in credentials");
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

bool has_control_or_space(std::string_view s) {
    for (unsigned char c : s)
        if (c <= 0x20 || c == 0x7f) return true;
    return false;
}

template <class Int>
bool parse_number(std::string_view s, Int& out) {
    for (char c : s)
        if (c < '0' || c > '9') return false; // no signs (the database number is an int)
    return parse_whole_number(s, out);
}

} // namespace

redis_endpoint parse_redis_url(std::string_view url) {
    redis_endpoint ep;
    std::string_view rest;
    if (url.starts_with("redis://")) {
        rest = url.substr(8);
    } else if (url.starts_with("rediss://")) {
        rest = url.substr(9);
        ep.tls = true;
    } else {
        bad("expected redis[s]://[[user]:password@]host[:port][/db]");
    }
    if (rest.find_first_of("?#") != std::string_view::npos)
        bad("query strings and fragments are not supported");

    // Authority ends at the first '/'; the last '@' inside it separates the credentials, so an
    // unencoded '@' in a password still works.
    std::string_view authority = rest.substr(0, rest.find('/'));
    std::string_view path = rest.substr(authority.size());
    if (auto at = authority.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = authority.substr(0, at);
        authority.remove_prefix(at + 1);
        if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
            ep.username = percent_decode(userinfo.substr(0, colon));
            ep.password = percent_decode(userinfo.substr(colon + 1));
        } else {
            ep.password = percent_decode(userinfo);
        }
        if (!ep.username.empty() && ep.password.empty()) bad("a username needs a password");
    }

    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        auto close = authority.find(']');
        if (close == std::string_view::npos) bad("unterminated '[' in IPv6 host");
        ep.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':') bad("unexpected text after IPv6 host");
            port_text = after.substr(1);
            if (port_text.empty()) bad("empty port");
        }
        if (ep.host.find_first_not_of("0123456789abcdefABCDEF:.%") != std::string::npos ||
            ep.host.empty())
            bad("bad IPv6 address");
    } else {
        auto colon = authority.find(':');
        ep.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) {
            port_text = authority.substr(colon + 1);
            if (port_text.empty()) bad("empty port");
        }
    }
    if (ep.host.empty()) bad("missing host");
    if (has_control_or_space(ep.host) || ep.host.find_first_of("[]@/") != std::string::npos)
        bad("bad host name");

    if (!port_text.empty()) {
        unsigned port = 0;
        if (!parse_number(port_text, port) || port == 0 || port > 65535)
            bad("port must be 1..65535");
        ep.port = static_cast<std::uint16_t>(port);
    }

    if (!path.empty()) {
        path.remove_prefix(1); // the '/'
        if (!path.empty()) {
            int db = 0;
            if (!parse_number(path, db)) bad("database must be a non-negative number");
            ep.db = db;
        }
    }
    return ep;
}

std::string address_of(const redis_endpoint& ep) {
    const bool ipv6 = ep.host.find(':') != std::string::npos;
    return (ipv6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
}

std::vector<std::string_view> split_redis_urls(std::string_view urls) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    for (std::size_t comma = urls.find(','); comma != std::string_view::npos;
         comma = urls.find(',', comma + 1)) {
        const auto next = urls.substr(comma + 1);
        if (!next.starts_with("redis://") && !next.starts_with("rediss://")) continue;
        out.push_back(urls.substr(start, comma - start));
        start = comma + 1;
    }
    out.push_back(urls.substr(start));
    return out;
}

std::vector<redis_endpoint> parse_redis_url_list(std::string_view urls) {
    std::vector<redis_endpoint> out;
    for (const auto url : split_redis_urls(urls)) {
        try {
            out.push_back(parse_redis_url(url));
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument(std::string(e.what()) + " (in \"" + mask_redis_url(url) +
                                        "\")");
        }
        if (out.back().tls != out.front().tls)
            throw std::invalid_argument("the list mixes redis:// and rediss:// URLs");
    }
    return out;
}

std::string mask_redis_url(std::string_view url) {
    if (const auto urls = split_redis_urls(url); urls.size() > 1) {
        std::string out;
        for (const auto one : urls) {
            if (!out.empty()) out += ',';
            out += mask_redis_url(one);
        }
        return out;
    }
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string_view::npos) return std::string(url);
    const auto authority = scheme_end + 3;
    // The last '@' anywhere ends the userinfo: an unencoded password may contain '@' or '/',
    // and leaking part of it is worse than masking a rare '@' in a path.
    const auto at = url.rfind('@');
    if (at == std::string_view::npos || at < authority) return std::string(url);
    const std::string_view userinfo = url.substr(authority, at - authority);
    if (userinfo.empty()) return std::string(url);
    const auto colon = userinfo.find(':');
    // Without a colon some clients read the lone userinfo as the password, so hide it too.
    const std::string masked = colon == std::string_view::npos ? std::string("***")
                               : colon + 1 == userinfo.size()
                                   ? std::string(userinfo)
                                   : std::string(userinfo.substr(0, colon + 1)) + "***";
    return std::string(url.substr(0, authority)) + masked + std::string(url.substr(at));
}

} // namespace ssegw
