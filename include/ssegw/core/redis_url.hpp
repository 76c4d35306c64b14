#pragma once
// Where the Redis server is and how to log in, parsed from a redis:// URL. The one parser and the
// one masker of Redis URLs: the config loader, the CLI, the environment reader and the Redis
// links all use these, so what --check-config accepts is what the server can connect to.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ssegw {

/// A Redis server address and credentials. `username` empty means the default user (AUTH with
/// the password only); `password` empty means no AUTH at all.
/// rediss:// links: how the server's certificate is checked and which client certificate to show.
struct redis_tls_options {
    std::string ca_file;     ///< PEM bundle of trusted CAs; empty = the system store
    std::string cert_file;   ///< client certificate (PEM), for servers that require one
    std::string key_file;    ///< its private key (PEM)
    std::string server_name; ///< SNI and the name the certificate must carry; empty = the host
    bool verify = true;      ///< false accepts any certificate (testing only)
};

struct redis_endpoint {
    std::string host;
    std::uint16_t port = 6379;
    std::string username;
    std::string password;
    int db = 0;
    bool tls = false;              ///< rediss://
    redis_tls_options tls_options; ///< used when tls
};

/// Parses `redis[s]://[[user]:password@]host[:port][/db]` (rediss: TLS). An IPv6 host goes in brackets
/// (`redis://[::1]:6380`); user and password may be percent-encoded; like redis-cli, userinfo
/// without a ':' is a password. Throws std::invalid_argument with a one-line message otherwise
/// (other schemes, empty host, bad port or db, query strings).
redis_endpoint parse_redis_url(std::string_view url);

/// Splits a comma-separated list of URLs (Sentinel and Cluster modes name several servers:
/// `redis://10.0.0.1:26379,redis://10.0.0.2:26379`). Only a comma followed by `redis://` or
/// `rediss://` separates, so a password may hold a comma. One URL gives a list of one.
std::vector<std::string_view> split_redis_urls(std::string_view urls);

/// parse_redis_url of each URL in a list; throws std::invalid_argument naming the bad one, or
/// when the list mixes redis:// and rediss://.
std::vector<redis_endpoint> parse_redis_url_list(std::string_view urls);

/// `host:port` (IPv6 in brackets): where a link connects, for logs; never any credential.
std::string address_of(const redis_endpoint& endpoint);

/// The URL with its password masked (`redis://user:***@host`), for --check-config output and
/// error messages. Works on any text, valid URL or not, so an error can show what was given,
/// and on lists (each URL masked).
std::string mask_redis_url(std::string_view url);

/// Empty or "none": no Redis, the gateway runs standalone.
inline bool is_standalone_url(std::string_view url) noexcept {
    return url.empty() || url == "none";
}

} // namespace ssegw
