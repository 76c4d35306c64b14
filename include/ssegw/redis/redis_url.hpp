#pragma once
// Where the Redis server is and how to log in, parsed from a redis:// URL.

#include <cstdint>
#include <string>
#include <string_view>

namespace ssegw {

/// A Redis server address and credentials. `username` empty means the default user (AUTH with
/// the password only); `password` empty means no AUTH at all.
struct redis_endpoint {
    std::string host;
    std::uint16_t port = 6379;
    std::string username;
    std::string password;
    int db = 0;
};

/// Parses `redis://[[user]:password@]host[:port][/db]`. An IPv6 host goes in brackets
/// (`redis://[::1]:6380`); user and password may be percent-encoded; like redis-cli, userinfo
/// without a ':' is a password. Throws std::invalid_argument with a one-line message otherwise
/// (other schemes, empty host, bad port or db, query strings).
redis_endpoint parse_redis_url(std::string_view url);

/// The URL without its password, for logs and --check-config output.
std::string redacted_url(const redis_endpoint& endpoint);

} // namespace ssegw
