#pragma once
// The effective configuration of one gateway process: built-in defaults, then the JSON file,
// then SSEGW_* environment variables, then command-line flags (config_loader.hpp does that).
// Plain data, copied into each component at start; nothing here changes while running.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ssegw/core/redis_url.hpp"

namespace ssegw {

/// Largest number of shards a process runs (server.threads): one bit each in a channel's mask.
inline constexpr unsigned max_shards = 64;

/// The values log.level and SSEGW_LOG_LEVEL accept (spdlog's level names).
inline constexpr std::array<std::string_view, 7> log_level_names = {
    "trace", "debug", "info", "warn", "error", "critical", "off"};

/// The values auth.jwt.algorithms accepts: HMAC with auth.jwt.secret, RSA and ECDSA with the PEM
/// in auth.jwt.public_key_file. "none" is never one of them.
inline constexpr std::array<std::string_view, 9> jwt_algorithm_names = {
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "ES512"};

/// HMAC algorithms take the shared secret; the others a public key.
inline constexpr bool is_hmac_algorithm(std::string_view name) noexcept {
    return name.starts_with("HS");
}

/// How accepted sockets are spread over the shard threads.
enum class accept_mode {
    least_loaded, ///< one acceptor hands each socket to the shard with the fewest sessions
    reuseport     ///< one SO_REUSEPORT acceptor per shard; the kernel balances by hash
};

struct server_config {
    std::string host = "0.0.0.0";
    std::uint16_t port = 8080;
    /// The admin port carries /publish, so it listens on loopback unless told otherwise.
    std::string admin_host = "127.0.0.1";
    std::uint16_t admin_port = 9090;
    unsigned threads = 0; ///< 0 = one shard thread per core
    std::uint32_t max_connections = 200000;
    std::uint32_t max_connections_per_user = 32;
    accept_mode accept = accept_mode::least_loaded;
    /// Time a client has to send a complete request head (slowloris guard).
    std::uint32_t handshake_timeout_ms = 10000;
    /// Upper bound on request line + headers; larger requests get 431.
    std::uint32_t max_header_bytes = 8192;
    /// Upper bound on the request target (path + query); longer ones get 414.
    std::uint32_t max_target_bytes = 4096;
    /// On SIGTERM streams are closed spread over this window, then the process exits.
    std::uint32_t drain_seconds = 5;
};

struct sse_config {
    std::string path = "/events";
    std::uint32_t heartbeat_seconds = 15;
    std::uint32_t retry_ms = 2000;
    /// A session whose unsent bytes exceed this is a slow consumer and is disconnected.
    std::uint64_t max_queue_bytes = 1048576;
    std::uint32_t max_topics = 32;
    /// Largest payload accepted from a channel or /publish; larger ones are dropped and counted.
    std::uint32_t max_event_bytes = 65536;
    /// A write that makes no progress for this long disconnects the session.
    std::uint32_t write_timeout_seconds = 30;
    /// Streams older than this (jittered by up to 10% so they do not leave together) are sent
    /// away with a retry hint, which rebalances clients after a scale-out; 0 = never.
    std::uint32_t max_lifetime_seconds = 0;
};

struct jwt_config {
    std::string secret;                              ///< HS256 key; masked when printed
    std::vector<std::string> algorithms = {"HS256"}; ///< accepted "alg" values
    std::string public_key_file;                     ///< PEM for RS256 / ES256
    std::string cookie = "sse_token";
    std::string query_param = "token";
    std::string user_claim = "sub";
    std::string topics_claim = "topics";
    std::uint32_t leeway_seconds = 30; ///< clock skew allowed on exp / nbf
    std::string audience;              ///< when set, "aud" must contain it
    std::string issuer;                ///< when set, "iss" must equal it
};

enum class auth_mode { jwt, none };

struct auth_config {
    auth_mode mode = auth_mode::jwt;
    jwt_config jwt;
    /// A stream gets `event: token-expiring` this long before its token's exp, so the page can
    /// fetch a new token and reopen before the stream is closed; 0 = never.
    std::uint32_t expiry_notice_seconds = 60;
    /// How long POST /disconnect with "revoke" (or a "jti") keeps refusing the tokens it names:
    /// set it to at least the longest lifetime of the tokens your backend issues.
    std::uint32_t revocation_ttl_seconds = 86400;
};

/// The admin port's own credentials (POST /publish, /disconnect, GET /presence, /position).
struct admin_config {
    /// When set (here, in api_key_file, or SSEGW_ADMIN_API_KEY), those endpoints require
    /// `Authorization: Bearer <key>`; /healthz, /readyz and /metrics stay open. Masked.
    std::string api_key;
    std::string api_key_file; ///< the key on its first line (secrets mounted as files)
};

struct cors_config {
    std::vector<std::string> allowed_origins; ///< exact origins; empty = no CORS headers
    bool allow_credentials = false;
};

enum class subscribe_mode { per_channel, pattern };

/// How Redis is deployed (redis.mode): one server (or a managed endpoint that follows failovers
/// itself), a primary found through Sentinel, or a Cluster (refused at start so far).
enum class redis_deployment { single, sentinel, cluster };

struct redis_sentinel_config {
    std::string master_name;
    std::string username;
    std::string password; ///< masked when printed
};

struct redis_config {
    /// "redis[s]://[[user]:password@]host[:port][/db]"; empty or "none" = standalone, no Redis.
    std::string url = "redis://127.0.0.1:6379";
    redis_deployment deployment = redis_deployment::single; ///< the "mode" key
    std::string prefix = "sse:";
    subscribe_mode mode = subscribe_mode::per_channel; ///< the "subscribe_mode" key
    /// Credentials; each overrides the URL's userinfo. The password comes from, in order of
    /// precedence: SSEGW_REDIS_PASSWORD, password_file (first line), password, the URL.
    std::string username;
    std::string password; ///< masked when printed
    std::string password_file;
    redis_tls_options tls;
    redis_sentinel_config sentinel;
    std::uint32_t reconnect_min_ms = 100;
    std::uint32_t reconnect_max_ms = 5000;

    bool standalone() const { return is_standalone_url(url); }
};

struct history_config {
    bool enabled = true;
    std::uint32_t max_len = 1000;
    std::uint32_t ttl_seconds = 86400;
};

/// Who is connected, across every instance sharing the Redis (GET /presence, the
/// `<prefix>presence` stream of online/offline transitions, the optional lifecycle stream).
struct presence_config {
    /// On by default: GET /presence and the online/offline stream are part of the contract, and
    /// the cost is one Redis call per instance per flush interval, whatever the churn (measured
    /// in docs/benchmarks.md).
    bool enabled = true;
    /// A user whose last connection closed counts as offline only after this long, so a
    /// reconnect (a page load, a drain moving the stream elsewhere) is not an offline.
    std::uint32_t offline_grace_seconds = 5;
    /// An instance's records count this long after its last heartbeat: the bound on how long
    /// the streams of an instance that died without cleaning up keep counting.
    std::uint32_t instance_ttl_seconds = 20;
    /// Heartbeat (liveness refresh and sweep of dead instances and due offlines), per instance.
    std::uint32_t heartbeat_ms = 1000;
    /// How long a shard gathers connects and disconnects before reporting them (one batch).
    std::uint32_t flush_ms = 250;
    /// Cap (approximate, XADD MAXLEN ~) of the `<prefix>presence` stream.
    std::uint32_t stream_max_len = 100000;
    /// One entry per stream opened or closed in `<prefix>lifecycle` (audit, analytics).
    bool lifecycle_stream = false;
    std::uint32_t lifecycle_max_len = 100000;
};

enum class log_format { text, json };

struct log_config {
    std::string level = "info"; ///< trace, debug, info, warn, error, critical, off
    log_format format = log_format::text;
};

struct gateway_config {
    server_config server;
    sse_config sse;
    auth_config auth;
    admin_config admin;
    cors_config cors;
    redis_config redis;
    history_config history;
    presence_config presence;
    log_config log;
};

} // namespace ssegw
