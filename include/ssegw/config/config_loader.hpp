#pragma once
// Turning JSON into a gateway_config and checking it. Start-up only: everything here may throw
// config_error, which main turns into one stderr line and exit code 2.

#include <ssegw/config/config.hpp>

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <string>
#include <vector>

namespace ssegw {

/// A bad configuration value. what() is one line naming the key (dotted path), flag or
/// environment variable and the problem, e.g. `server.port: expected an integer in 1..65535, got "abc"`.
struct config_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// Overlays the keys present in `j` onto `cfg`; absent keys keep their current value.
/// Strict: unknown keys, wrong JSON types, out-of-type-range integers and unknown enum strings
/// throw config_error naming the full dotted path. Cross-field rules are left to validate().
void apply_json(gateway_config& cfg, const nlohmann::json& j);

/// Built-in defaults overlaid with the JSON file at `path`. Throws config_error naming the file
/// when it cannot be read, is not valid JSON (with line and column) or fails apply_json.
/// Does not call validate(): env and flags still get their say first.
gateway_config load_config_file(const std::string& path);

/// Checks ranges and cross-field rules; throws config_error on the first problem found.
void validate(const gateway_config& cfg);

/// Where the gateway's Redis links connect and how they log in: redis.url, with redis.username
/// and the password (password_file's first line, else redis.password) overriding the URL's
/// userinfo. Throws config_error when password_file cannot be read.
/// In Sentinel and Cluster modes the host is empty (the sentinels or the slot map name the nodes)
/// and TLS follows the scheme of redis.url's list.
redis_endpoint redis_endpoint_of(const redis_config& redis);

/// Cluster mode: the seed nodes of redis.url, each with the credentials redis_endpoint_of
/// gives (redis.username, the password) overriding its URL's userinfo, and redis.tls.
std::vector<redis_endpoint> redis_seeds_of(const redis_config& redis);

/// Sentinel mode: the sentinels of redis.url, each with redis.sentinel.username/password
/// overriding its URL's userinfo, and redis.tls. Throws std::invalid_argument on a bad list.
std::vector<redis_endpoint> redis_sentinels_of(const redis_config& redis);

/// The admin key in effect: admin.api_key, or the first line of admin.api_key_file (read now;
/// throws config_error when it cannot be read or is empty). Empty = the admin port is open.
std::string admin_key_of(const admin_config& admin);

/// The whole effective configuration as pretty-printed JSON, keyed exactly as apply_json accepts
/// (so the output is a valid config file), with auth.jwt.secret shown as "***" when set and a
/// password in redis.url masked as `redis://:***@host:port`.
std::string effective_config_json(const gateway_config& cfg);

} // namespace ssegw
