#include <ssegw/config/config_loader.hpp>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace ssegw {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// A private directory under the system temp dir, removed at scope exit.
class temp_dir {
public:
    temp_dir() {
        std::string pattern = (fs::temp_directory_path() / "ssegw-config-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string write(const std::string& name, const std::string& content) const {
        const fs::path file = path_ / name;
        std::ofstream(file, std::ios::binary) << content;
        return file.string();
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

/// The message of the config_error `fn` throws; fails the test when it throws none.
std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const config_error& e) {
        return e.what();
    }
    ADD_FAILURE() << "expected a config_error";
    return {};
}

std::string apply_error(const std::string& text) {
    return error_of([&] {
        gateway_config cfg;
        apply_json(cfg, json::parse(text));
    });
}

/// A config that passes validate(), for the rule tests to break one field at a time.
gateway_config valid_config() {
    gateway_config cfg;
    cfg.auth.jwt.secret = "s3cret";
    return cfg;
}

std::string validate_error(const std::function<void(gateway_config&)>& change) {
    gateway_config cfg = valid_config();
    change(cfg);
    return error_of([&] { validate(cfg); });
}

fs::path source_dir() {
#ifdef SSEGW_SOURCE_DIR
    return fs::path(SSEGW_SOURCE_DIR);
#else
    // tests/unit/config/<this file> -> repository root
    return fs::absolute(fs::path(__FILE__)).parent_path().parent_path().parent_path().parent_path();
#endif
}

TEST(config_defaults, match_the_contract) {
    gateway_config cfg;
    EXPECT_EQ(cfg.server.host, "0.0.0.0");
    EXPECT_EQ(cfg.server.port, 8080);
    EXPECT_EQ(cfg.server.admin_port, 9090);
    EXPECT_EQ(cfg.server.threads, 0u);
    EXPECT_EQ(cfg.server.max_connections, 200000u);
    EXPECT_EQ(cfg.server.max_connections_per_user, 32u);
    EXPECT_EQ(cfg.sse.path, "/events");
    EXPECT_EQ(cfg.sse.heartbeat_seconds, 15u);
    EXPECT_EQ(cfg.sse.retry_ms, 2000u);
    EXPECT_EQ(cfg.sse.max_queue_bytes, 1048576u);
    EXPECT_EQ(cfg.sse.max_topics, 32u);
    EXPECT_EQ(cfg.auth.mode, auth_mode::jwt);
    EXPECT_EQ(cfg.auth.jwt.algorithms, std::vector<std::string>{"HS256"});
    EXPECT_EQ(cfg.auth.jwt.cookie, "sse_token");
    EXPECT_EQ(cfg.auth.jwt.query_param, "token");
    EXPECT_EQ(cfg.auth.jwt.user_claim, "sub");
    EXPECT_EQ(cfg.auth.jwt.topics_claim, "topics");
    EXPECT_TRUE(cfg.cors.allowed_origins.empty());
    EXPECT_FALSE(cfg.cors.allow_credentials);
    EXPECT_EQ(cfg.redis.url, "redis://127.0.0.1:6379");
    EXPECT_EQ(cfg.redis.prefix, "sse:");
    EXPECT_EQ(cfg.redis.mode, subscribe_mode::per_channel);
    EXPECT_TRUE(cfg.history.enabled);
    EXPECT_EQ(cfg.history.max_len, 1000u);
    EXPECT_EQ(cfg.history.ttl_seconds, 86400u);
    EXPECT_EQ(cfg.log.level, "info");
    EXPECT_EQ(cfg.log.format, log_format::text);
}

TEST(config_defaults, need_only_a_secret_to_validate) {
    // The default auth mode is jwt/HS256, so an empty secret must be refused...
    EXPECT_NE(error_of([] { validate(gateway_config{}); }).find("auth.jwt.secret"),
              std::string::npos);
    // ...and everything else about the defaults is valid.
    EXPECT_NO_THROW(validate(valid_config()));
}

TEST(apply_json, accepts_every_contract_key) {
    gateway_config cfg;
    apply_json(cfg, json::parse(R"({
      "server":  { "host": "127.0.0.2", "port": 8081, "admin_port": 9091, "threads": 4,
                   "max_connections": 10, "max_connections_per_user": 2, "accept": "reuseport",
                   "admin_host": "0.0.0.0", "handshake_timeout_ms": 1, "max_header_bytes": 2,
                   "drain_seconds": 3 },
      "sse":     { "path": "/sse", "heartbeat_seconds": 5, "retry_ms": 100,
                   "max_queue_bytes": 8192, "max_topics": 3, "max_event_bytes": 1024,
                   "write_timeout_seconds": 7 },
      "auth":    { "mode": "none", "jwt": { "secret": "k", "algorithms": ["RS256", "ES256"],
                   "public_key_file": "/k.pem", "cookie": "c", "query_param": "q",
                   "user_claim": "uid", "topics_claim": "t", "leeway_seconds": 1,
                   "audience": "aud", "issuer": "iss" } },
      "cors":    { "allowed_origins": ["https://a.example"], "allow_credentials": true },
      "redis":   { "url": "none", "prefix": "x:", "subscribe_mode": "pattern",
                   "reconnect_min_ms": 1, "reconnect_max_ms": 2 },
      "history": { "enabled": false, "max_len": 5, "ttl_seconds": 60 },
      "log":     { "level": "debug", "format": "json" }
    })"));
    EXPECT_EQ(cfg.server.host, "127.0.0.2");
    EXPECT_EQ(cfg.server.port, 8081);
    EXPECT_EQ(cfg.server.admin_port, 9091);
    EXPECT_EQ(cfg.server.admin_host, "0.0.0.0");
    EXPECT_EQ(cfg.server.threads, 4u);
    EXPECT_EQ(cfg.server.max_connections, 10u);
    EXPECT_EQ(cfg.server.max_connections_per_user, 2u);
    EXPECT_EQ(cfg.server.accept, accept_mode::reuseport);
    EXPECT_EQ(cfg.server.handshake_timeout_ms, 1u);
    EXPECT_EQ(cfg.server.max_header_bytes, 2u);
    EXPECT_EQ(cfg.server.drain_seconds, 3u);
    EXPECT_EQ(cfg.sse.path, "/sse");
    EXPECT_EQ(cfg.sse.heartbeat_seconds, 5u);
    EXPECT_EQ(cfg.sse.retry_ms, 100u);
    EXPECT_EQ(cfg.sse.max_queue_bytes, 8192u);
    EXPECT_EQ(cfg.sse.max_topics, 3u);
    EXPECT_EQ(cfg.sse.max_event_bytes, 1024u);
    EXPECT_EQ(cfg.sse.write_timeout_seconds, 7u);
    EXPECT_EQ(cfg.auth.mode, auth_mode::none);
    EXPECT_EQ(cfg.auth.jwt.secret, "k");
    EXPECT_EQ(cfg.auth.jwt.algorithms, (std::vector<std::string>{"RS256", "ES256"}));
    EXPECT_EQ(cfg.auth.jwt.public_key_file, "/k.pem");
    EXPECT_EQ(cfg.auth.jwt.cookie, "c");
    EXPECT_EQ(cfg.auth.jwt.query_param, "q");
    EXPECT_EQ(cfg.auth.jwt.user_claim, "uid");
    EXPECT_EQ(cfg.auth.jwt.topics_claim, "t");
    EXPECT_EQ(cfg.auth.jwt.leeway_seconds, 1u);
    EXPECT_EQ(cfg.auth.jwt.audience, "aud");
    EXPECT_EQ(cfg.auth.jwt.issuer, "iss");
    EXPECT_EQ(cfg.cors.allowed_origins, std::vector<std::string>{"https://a.example"});
    EXPECT_TRUE(cfg.cors.allow_credentials);
    EXPECT_EQ(cfg.redis.url, "none");
    EXPECT_TRUE(cfg.redis.standalone());
    EXPECT_EQ(cfg.redis.prefix, "x:");
    EXPECT_EQ(cfg.redis.mode, subscribe_mode::pattern);
    EXPECT_EQ(cfg.redis.reconnect_min_ms, 1u);
    EXPECT_EQ(cfg.redis.reconnect_max_ms, 2u);
    EXPECT_FALSE(cfg.history.enabled);
    EXPECT_EQ(cfg.history.max_len, 5u);
    EXPECT_EQ(cfg.history.ttl_seconds, 60u);
    EXPECT_EQ(cfg.log.level, "debug");
    EXPECT_EQ(cfg.log.format, log_format::json);
}

TEST(apply_json, absent_keys_keep_their_value) {
    gateway_config cfg;
    apply_json(cfg, json::parse(R"({"server": {"port": 8000}, "sse": {}})"));
    EXPECT_EQ(cfg.server.port, 8000);
    EXPECT_EQ(cfg.server.admin_port, 9090);
    EXPECT_EQ(cfg.sse.path, "/events");
}

TEST(apply_json, unknown_keys_are_named_by_full_path) {
    EXPECT_EQ(apply_error(R"({"server": {"prot": 1}})"), "unknown key 'server.prot'");
    EXPECT_EQ(apply_error(R"({"auth": {"jwt": {"secrett": "x"}}})"),
              "unknown key 'auth.jwt.secrett'");
    EXPECT_EQ(apply_error(R"({"servers": {}})"), "unknown key 'servers'");
    // The field is called `mode` in C++ but the file key is subscribe_mode.
    EXPECT_EQ(apply_error(R"({"redis": {"modus": "pattern"}})"), "unknown key 'redis.modus'");
}

TEST(apply_json, wrong_types_are_named) {
    EXPECT_EQ(apply_error(R"({"server": {"port": "abc"}})"),
              R"(server.port: expected an integer in 1..65535, got "abc")");
    EXPECT_EQ(apply_error(R"({"server": {"port": 70000}})"),
              R"(server.port: expected an integer in 1..65535, got 70000)");
    EXPECT_EQ(apply_error(R"({"server": {"threads": -1}})"),
              "server.threads: expected an integer in 0..4294967295, got -1");
    EXPECT_EQ(apply_error(R"({"sse": {"retry_ms": 1.5}})"),
              "sse.retry_ms: expected an integer in 0..4294967295, got 1.5");
    EXPECT_EQ(apply_error(R"({"sse": {"path": 5}})"), "sse.path: expected a string, got 5");
    EXPECT_EQ(apply_error(R"({"history": {"enabled": "yes"}})"),
              R"(history.enabled: expected true or false, got "yes")");
    EXPECT_EQ(apply_error(R"({"cors": {"allowed_origins": "https://a"}})"),
              R"(cors.allowed_origins: expected an array of strings, got "https://a")");
    EXPECT_EQ(apply_error(R"({"auth": {"jwt": {"algorithms": ["HS256", 3]}}})"),
              "auth.jwt.algorithms[1]: expected a string, got 3");
    EXPECT_EQ(apply_error(R"({"auth": []})"), "auth: expected an object, got []");
    EXPECT_EQ(apply_error(R"([1])"), "config: expected a JSON object at the top level, got [1]");
}

TEST(apply_json, enums_by_their_json_strings) {
    EXPECT_EQ(apply_error(R"({"server": {"accept": "least_loaded"}})"),
              R"(server.accept: expected one of "least-loaded", "reuseport", got "least_loaded")");
    EXPECT_EQ(apply_error(R"({"auth": {"mode": "basic"}})"),
              R"(auth.mode: expected one of "jwt", "none", got "basic")");
    EXPECT_EQ(
        apply_error(R"({"redis": {"subscribe_mode": "per_channel"}})"),
        R"(redis.subscribe_mode: expected one of "per-channel", "pattern", got "per_channel")");
    EXPECT_EQ(apply_error(R"({"log": {"format": "xml"}})"),
              R"(log.format: expected one of "text", "json", got "xml")");
    EXPECT_NE(apply_error(R"({"log": {"level": "verbose"}})").find("log.level: expected one of"),
              std::string::npos);
    for (const char* level : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
        gateway_config cfg;
        apply_json(cfg, json{{"log", {{"level", level}}}});
        EXPECT_EQ(cfg.log.level, level);
    }
}

TEST(apply_json, failure_leaves_the_config_untouched) {
    gateway_config cfg;
    EXPECT_THROW(apply_json(cfg, json::parse(R"({"server": {"port": 1234, "prot": 1}})")),
                 config_error);
    EXPECT_EQ(cfg.server.port, 8080);
}

TEST(load_config_file, file_overrides_defaults) {
    temp_dir dir;
    const auto path =
        dir.write("gw.json", R"({"server": {"port": 18080}, "redis": {"url": "none"}})");
    const gateway_config cfg = load_config_file(path);
    EXPECT_EQ(cfg.server.port, 18080);
    EXPECT_EQ(cfg.server.admin_port, 9090);
    EXPECT_TRUE(cfg.redis.standalone());
}

TEST(load_config_file, errors_name_the_file) {
    temp_dir dir;
    const std::string missing = (dir.path() / "missing.json").string();
    const auto err = error_of([&] { load_config_file(missing); });
    EXPECT_EQ(err.rfind(missing + ": cannot open", 0), 0u) << err;

    const auto bad_syntax = dir.write("bad.json", "{\n  \"server\": {\"port\": 1,}\n}\n");
    const auto syntax_err = error_of([&] { load_config_file(bad_syntax); });
    EXPECT_EQ(syntax_err.rfind(bad_syntax + ": invalid JSON: ", 0), 0u) << syntax_err;
    EXPECT_NE(syntax_err.find("line 2"), std::string::npos) << syntax_err;
    EXPECT_EQ(syntax_err.find("json.exception"), std::string::npos) << syntax_err;
    EXPECT_EQ(syntax_err.find('\n'), std::string::npos);

    const auto unknown = dir.write("unknown.json", R"({"server": {"prot": 1}})");
    EXPECT_EQ(error_of([&] { load_config_file(unknown); }),
              unknown + ": unknown key 'server.prot'");

    const auto err_dir = error_of([&] { load_config_file(dir.path().string()); });
    EXPECT_NE(err_dir.find("is a directory"), std::string::npos) << err_dir;
}

TEST(validate, ports) {
    EXPECT_EQ(validate_error([](auto& c) { c.server.port = 0; }),
              "server.port: must be in 1..65535, got 0");
    EXPECT_EQ(validate_error([](auto& c) { c.server.admin_port = 0; }),
              "server.admin_port: must be in 1..65535, got 0");
    EXPECT_EQ(validate_error([](auto& c) { c.server.admin_port = c.server.port; }),
              "server.admin_port: must differ from server.port (both are 8080)");
}

TEST(validate, threads_and_sse_limits) {
    EXPECT_EQ(validate_error([](auto& c) { c.server.threads = 65; }),
              "server.threads: must be in 0..64, got 65");
    EXPECT_EQ(validate_error([](auto& c) { c.sse.heartbeat_seconds = 0; }),
              "sse.heartbeat_seconds: must be in 1..3600, got 0");
    EXPECT_EQ(validate_error([](auto& c) { c.sse.heartbeat_seconds = 3601; }),
              "sse.heartbeat_seconds: must be in 1..3600, got 3601");
    EXPECT_EQ(validate_error([](auto& c) { c.sse.retry_ms = 3600001; }),
              "sse.retry_ms: must be in 0..3600000, got 3600001");
    EXPECT_NE(validate_error([](auto& c) {
                  c.sse.max_queue_bytes = 4095;
              }).find("sse.max_queue_bytes: must be in 4096.."),
              std::string::npos);
    EXPECT_EQ(validate_error([](auto& c) { c.sse.max_topics = 1025; }),
              "sse.max_topics: must be in 0..1024, got 1025");
    EXPECT_EQ(validate_error([](auto& c) { c.sse.max_event_bytes = 15; }),
              "sse.max_event_bytes: must be in 16..16777216, got 15");
    EXPECT_EQ(validate_error([](auto& c) { c.sse.max_event_bytes = 16777217; }),
              "sse.max_event_bytes: must be in 16..16777216, got 16777217");
    // 0 would cut every write at the next tick, however fast the client reads.
    EXPECT_EQ(validate_error([](auto& c) { c.sse.write_timeout_seconds = 0; }),
              "sse.write_timeout_seconds: must be in 1..3600, got 0");
    EXPECT_EQ(validate_error([](auto& c) { c.sse.path = "events"; }),
              R"(sse.path: must start with '/', got "events")");

    // Boundaries that are allowed.
    gateway_config cfg = valid_config();
    cfg.server.threads = 64;
    cfg.sse.retry_ms = 0;
    cfg.sse.max_queue_bytes = 4096;
    cfg.sse.max_topics = 0;
    cfg.sse.max_event_bytes = 16;
    cfg.sse.heartbeat_seconds = 3600;
    EXPECT_NO_THROW(validate(cfg));
}

TEST(validate, auth) {
    EXPECT_EQ(validate_error([](auto& c) {
                  c.auth.jwt.algorithms.clear();
              }).rfind("auth.jwt.algorithms: ", 0),
              0u);
    EXPECT_EQ(validate_error([](auto& c) {
                  c.auth.jwt.algorithms = {"HS256", "none"};
              }).rfind(R"(auth.jwt.algorithms: unsupported algorithm "none")", 0),
              0u);
    EXPECT_EQ(
        validate_error([](auto& c) { c.auth.jwt.secret.clear(); }),
        R"(auth.jwt.secret: required when auth.mode is "jwt" and algorithms include an HS* algorithm)");
    EXPECT_EQ(
        validate_error([](auto& c) { c.auth.jwt.algorithms = {"RS256"}; }),
        R"(auth.jwt.public_key_file: required when auth.mode is "jwt" and algorithms include RS256)");
    EXPECT_EQ(
        validate_error([](auto& c) { c.auth.jwt.algorithms = {"ES256"}; }),
        R"(auth.jwt.public_key_file: required when auth.mode is "jwt" and algorithms include ES256)");

    gateway_config cfg = valid_config();
    cfg.auth.jwt.secret.clear();
    cfg.auth.jwt.algorithms = {"RS256", "ES256"};
    cfg.auth.jwt.public_key_file = "/etc/ssegw/key.pem";
    EXPECT_NO_THROW(validate(cfg));

    // In mode none neither a secret nor a key is needed.
    cfg = gateway_config{};
    cfg.auth.mode = auth_mode::none;
    cfg.auth.jwt.algorithms = {"HS256", "RS256"};
    EXPECT_NO_THROW(validate(cfg));
}

TEST(validate, redis_credentials_and_tls) {
    const std::string file =
        (std::filesystem::path(::testing::TempDir()) / "ssegw-redis-password").string();
    std::ofstream(file) << "s3cret\n";
    // History in a cluster: a stream's id holds a position per channel, so topics are bounded.
    EXPECT_EQ(validate_error([](auto& c) {
                  c.redis.deployment = redis_deployment::cluster;
                  c.sse.max_topics = 63;
              }).rfind("sse.max_topics: must be at most 62 with redis.mode \"cluster\"", 0),
              0u);
    gateway_config cluster = valid_config();
    cluster.redis.deployment = redis_deployment::cluster;
    cluster.redis.url = "redis://10.0.0.1:7000,redis://10.0.0.2:7000";
    cluster.sse.max_topics = 62;
    EXPECT_NO_THROW(validate(cluster));
    cluster.history.enabled = false;
    cluster.sse.max_topics = 1024;
    EXPECT_NO_THROW(validate(cluster));
    EXPECT_EQ(validate_error([&](auto& c) {
                  c.redis.password = "pw-in-config";
                  c.redis.password_file = file;
              }),
              "redis.password_file: set either redis.password or redis.password_file, not both");
    EXPECT_EQ(validate_error([](auto& c) {
                  c.redis.password_file = "/nonexistent/pw";
              }).rfind("redis.password_file: cannot read /nonexistent/pw", 0),
              0u);
    EXPECT_EQ(validate_error([](auto& c) { c.redis.tls.ca_file = "/etc/hostname"; }),
              "redis.tls: set, but redis.url is not rediss:// (the link would not use TLS)");
    EXPECT_EQ(validate_error([](auto& c) {
                  c.redis.url = "rediss://h:6380";
                  c.redis.tls.cert_file = "/etc/hostname";
              }),
              "redis.tls.key_file: a client certificate needs both cert_file and key_file");
    EXPECT_EQ(validate_error([](auto& c) {
                  c.redis.url = "rediss://h:6380";
                  c.redis.tls.ca_file = "/nonexistent/ca.pem";
              }).rfind("redis.tls.ca_file: cannot read /nonexistent/ca.pem", 0),
              0u);

    // Precedence: the password file over the password, both over the URL; username likewise.
    redis_config r;
    r.url = "rediss://urluser:urlpw@cache:6380/1";
    auto ep = redis_endpoint_of(r);
    EXPECT_TRUE(ep.tls);
    EXPECT_EQ(ep.username, "urluser");
    EXPECT_EQ(ep.password, "urlpw");
    r.username = "ssegw";
    r.password = "cfgpw";
    r.tls.server_name = "cache.internal";
    ep = redis_endpoint_of(r);
    EXPECT_EQ(ep.username, "ssegw");
    EXPECT_EQ(ep.password, "cfgpw");
    EXPECT_EQ(ep.tls_options.server_name, "cache.internal");
    r.password.clear();
    r.password_file = file;
    EXPECT_EQ(redis_endpoint_of(r).password, "s3cret") << "the first line, without its newline";
}

TEST(validate, redis) {
    EXPECT_EQ(validate_error([](auto& c) { c.redis.url = "http://x:1"; }).rfind("redis.url: ", 0),
              0u);
    EXPECT_EQ(validate_error([](auto& c) { c.redis.url = "redis://"; }).rfind("redis.url: ", 0),
              0u);
    // The message must not leak the password it complains about.
    EXPECT_EQ(
        validate_error([](auto& c) { c.redis.url = "rediss://:hunter2@h:0"; }).find("hunter2"),
        std::string::npos);
    EXPECT_EQ(validate_error([](auto& c) { c.redis.prefix.clear(); }),
              "redis.prefix: must not be empty");
    EXPECT_EQ(validate_error([](auto& c) { c.redis.prefix = "my app:"; }),
              R"(redis.prefix: must not contain spaces, got "my app:")");
    EXPECT_EQ(validate_error([](auto& c) {
                  c.redis.reconnect_min_ms = 6000;
                  c.redis.reconnect_max_ms = 5000;
              }),
              "redis.reconnect_min_ms: must not exceed redis.reconnect_max_ms (6000 > 5000)");
    for (const char* url : {"", "none", "redis://h:6379", "redis://:pw@h:6379/2"}) {
        gateway_config cfg = valid_config();
        cfg.redis.url = url;
        EXPECT_NO_THROW(validate(cfg)) << url;
    }
}

TEST(validate, history_cors_and_log) {
    EXPECT_EQ(validate_error([](auto& c) { c.history.max_len = 0; }),
              "history.max_len: must be at least 1, got 0");
    EXPECT_EQ(validate_error([](auto& c) { c.cors.allowed_origins = {""}; }),
              "cors.allowed_origins: entries must not be empty");
    EXPECT_EQ(validate_error([](auto& c) {
                  c.cors.allowed_origins = {"https://a.example/"};
              }).rfind(R"(cors.allowed_origins: "https://a.example/" must not end with '/')", 0),
              0u);
    EXPECT_EQ(validate_error([](auto& c) {
                  c.cors.allowed_origins = {"*"};
                  c.cors.allow_credentials = true;
              }),
              R"(cors.allowed_origins: "*" is not allowed when cors.allow_credentials is true)");
    EXPECT_EQ(validate_error([](auto& c) {
                  c.log.level = "loud";
              }).rfind("log.level: expected one of", 0),
              0u);

    gateway_config cfg = valid_config();
    cfg.cors.allowed_origins = {"*"};
    EXPECT_NO_THROW(validate(cfg));
    cfg.cors.allowed_origins = {"https://a.example", "http://localhost:3000"};
    cfg.cors.allow_credentials = true;
    EXPECT_NO_THROW(validate(cfg));
}

TEST(effective_config_json, masks_secrets) {
    gateway_config cfg = valid_config();
    cfg.redis.url = "redis://:hunter2@redis.internal:6380";
    const std::string text = effective_config_json(cfg);
    EXPECT_EQ(text.find("s3cret"), std::string::npos);
    EXPECT_EQ(text.find("hunter2"), std::string::npos);
    const json out = json::parse(text);
    EXPECT_EQ(out["auth"]["jwt"]["secret"], "***");
    EXPECT_EQ(out["redis"]["url"], "redis://:***@redis.internal:6380");

    cfg.auth.jwt.secret.clear();
    EXPECT_EQ(json::parse(effective_config_json(cfg))["auth"]["jwt"]["secret"], "");
}

TEST(effective_config_json, masks_the_admin_key) {
    gateway_config cfg = valid_config();
    cfg.admin.api_key = "admin-key-123";
    const std::string text = effective_config_json(cfg);
    EXPECT_EQ(text.find("admin-key-123"), std::string::npos);
    EXPECT_EQ(json::parse(text)["admin"]["api_key"], "***");
}

TEST(validate, admin_key_and_control_bounds) {
    EXPECT_EQ(validate_error([](auto& c) {
                  c.admin.api_key = "k";
                  c.admin.api_key_file = "/etc/hostname";
              }),
              "admin.api_key_file: set either admin.api_key or admin.api_key_file, not both");
    EXPECT_EQ(validate_error([](auto& c) { c.admin.api_key = "a b"; }),
              "admin.api_key: must not contain spaces or control characters");
    EXPECT_EQ(validate_error([](auto& c) {
                  c.admin.api_key_file = "/nonexistent/key";
              }).rfind("admin.api_key_file: cannot read /nonexistent/key", 0),
              0u);
    EXPECT_EQ(validate_error([](auto& c) { c.auth.revocation_ttl_seconds = 0; }),
              "auth.revocation_ttl_seconds: must be in 1..31536000, got 0");
}

TEST(admin_key_of, reads_the_first_line_of_the_file) {
    temp_dir dir;
    admin_config admin;
    admin.api_key = "inline";
    EXPECT_EQ(admin_key_of(admin), "inline");
    admin.api_key.clear();
    admin.api_key_file = dir.write("key", "from-file\nsecond line\n");
    EXPECT_EQ(admin_key_of(admin), "from-file");
    admin.api_key_file = dir.write("empty", "");
    EXPECT_THROW(admin_key_of(admin), config_error);
}

TEST(effective_config_json, masks_redis_passwords) {
    gateway_config cfg;
    cfg.redis.password = "hunter2";
    cfg.redis.sentinel.password = "hunter3";
    const auto text = effective_config_json(cfg);
    EXPECT_EQ(text.find("hunter"), std::string::npos) << text;
    const json out = json::parse(text);
    EXPECT_EQ(out["redis"]["password"], "***");
    EXPECT_EQ(out["redis"]["sentinel"]["password"], "***");
}

TEST(effective_config_json, uses_the_file_key_names) {
    const json out = json::parse(effective_config_json(gateway_config{}));
    EXPECT_EQ(out["server"]["accept"], "least-loaded");
    EXPECT_EQ(out["redis"]["subscribe_mode"], "per-channel");
    EXPECT_EQ(out["auth"]["mode"], "jwt");
    EXPECT_EQ(out["log"]["format"], "text");
    EXPECT_EQ(out["server"]["port"], 8080);
    EXPECT_EQ(out["redis"]["mode"], "single"); // redis.mode is the deployment, not subscribe_mode
}

TEST(effective_config_json, round_trips_through_apply_json) {
    gateway_config cfg = valid_config();
    cfg.server.accept = accept_mode::reuseport;
    cfg.server.threads = 3;
    cfg.auth.mode = auth_mode::none;
    cfg.auth.jwt.algorithms = {"HS256", "ES256"};
    cfg.cors.allowed_origins = {"https://a.example"};
    cfg.redis.mode = subscribe_mode::pattern;
    cfg.redis.url = "redis://:pw@h:1";
    cfg.log.format = log_format::json;
    cfg.log.level = "warn";
    cfg.history.enabled = false;

    const std::string first = effective_config_json(cfg);
    gateway_config reread;
    apply_json(reread, json::parse(first));
    EXPECT_EQ(effective_config_json(reread), first);

    // Unmasked fields come back exactly.
    EXPECT_EQ(reread.server.accept, accept_mode::reuseport);
    EXPECT_EQ(reread.redis.mode, subscribe_mode::pattern);
    EXPECT_EQ(reread.auth.jwt.algorithms, cfg.auth.jwt.algorithms);
    EXPECT_EQ(reread.log.level, "warn");
}

TEST(shipped_config, loads_and_validates) {
    const fs::path path = source_dir() / "config" / "gateway.json";
    ASSERT_TRUE(fs::exists(path)) << path;
    gateway_config cfg;
    ASSERT_NO_THROW(cfg = load_config_file(path.string()));
    EXPECT_NO_THROW(validate(cfg));
    EXPECT_EQ(cfg.auth.mode, auth_mode::none);
    EXPECT_EQ(cfg.server.threads, 0u);

    // It spells out every key: re-emitting it gives back the same document.
    std::ifstream in(path);
    const json file = json::parse(in);
    EXPECT_EQ(json::parse(effective_config_json(cfg)), file);
}

} // namespace

TEST(validate, sentinel_mode) {
    const auto sentinel = [](gateway_config& c) {
        c.redis.deployment = redis_deployment::sentinel;
        c.redis.url = "redis://10.0.0.1:26379,redis://:pw@10.0.0.2:26379";
        c.redis.sentinel.master_name = "mymaster";
    };
    gateway_config cfg = valid_config();
    sentinel(cfg);
    EXPECT_NO_THROW(validate(cfg));
    EXPECT_EQ(validate_error([&](auto& c) {
                  sentinel(c);
                  c.redis.sentinel.master_name.clear();
              }).rfind("redis.sentinel.master_name: required", 0),
              0u);
    EXPECT_EQ(validate_error([&](auto& c) {
                  sentinel(c);
                  c.redis.url = "redis://10.0.0.1:26379,rediss://10.0.0.2:26379";
              }).rfind("redis.url: the list mixes redis:// and rediss://", 0),
              0u);
    // A list is for Sentinel mode only.
    EXPECT_EQ(validate_error([](auto& c) {
                  c.redis.url = "redis://10.0.0.1:6379,redis://10.0.0.2:6379";
              }).rfind("redis.url: lists 2 servers", 0),
              0u);

    // Sentinels log in with redis.sentinel.*, the primary with redis.username/password.
    cfg.redis.sentinel.password = "sentinel-pw";
    cfg.redis.password = "data-pw";
    const auto sentinels = redis_sentinels_of(cfg.redis);
    ASSERT_EQ(sentinels.size(), 2u);
    EXPECT_EQ(sentinels[1].host, "10.0.0.2");
    EXPECT_EQ(sentinels[1].port, 26379);
    EXPECT_EQ(sentinels[0].password, "sentinel-pw");
    const auto primary = redis_endpoint_of(cfg.redis);
    EXPECT_EQ(primary.host, "");
    EXPECT_EQ(primary.password, "data-pw");
    EXPECT_FALSE(primary.tls);
}

} // namespace ssegw
