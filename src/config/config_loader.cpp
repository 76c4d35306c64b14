#include <ssegw/config/config_loader.hpp>

#include "ssegw/core/cluster_cursor.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>

namespace ssegw {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

template <class E>
struct enum_name {
    E value;
    const char* name;
};

constexpr enum_name<accept_mode> accept_names[] = {{accept_mode::least_loaded, "least-loaded"},
                                                   {accept_mode::reuseport, "reuseport"}};
constexpr enum_name<auth_mode> auth_mode_names[] = {{auth_mode::jwt, "jwt"},
                                                    {auth_mode::none, "none"}};
constexpr enum_name<subscribe_mode> subscribe_mode_names[] = {
    {subscribe_mode::per_channel, "per-channel"}, {subscribe_mode::pattern, "pattern"}};
constexpr enum_name<redis_deployment> redis_deployment_names[] = {
    {redis_deployment::single, "single"},
    {redis_deployment::sentinel, "sentinel"},
    {redis_deployment::cluster, "cluster"}};
constexpr enum_name<log_format> log_format_names[] = {{log_format::text, "text"},
                                                      {log_format::json, "json"}};

// Every key of the config file is named exactly once, here. The reader (apply_json) and the
// writer (effective_config_json) both walk this description, so the accepted file format and
// the --check-config output cannot drift apart when a field is added.
template <class Cfg, class Visitor>
void describe(Cfg& c, Visitor& v) {
    v.section("server", [&] {
        auto& s = c.server;
        v.field("host", s.host);
        v.integer("port", s.port, 1, 65535);
        v.field("admin_host", s.admin_host);
        v.integer("admin_port", s.admin_port, 1, 65535);
        v.integer("threads", s.threads);
        v.integer("max_connections", s.max_connections);
        v.integer("max_connections_per_user", s.max_connections_per_user);
        v.enumeration("accept", s.accept, accept_names);
        v.integer("handshake_timeout_ms", s.handshake_timeout_ms);
        v.integer("max_header_bytes", s.max_header_bytes);
        v.integer("max_target_bytes", s.max_target_bytes);
        v.integer("drain_seconds", s.drain_seconds);
    });
    v.section("sse", [&] {
        auto& s = c.sse;
        v.field("path", s.path);
        v.integer("heartbeat_seconds", s.heartbeat_seconds);
        v.integer("retry_ms", s.retry_ms);
        v.integer("max_queue_bytes", s.max_queue_bytes);
        v.integer("max_topics", s.max_topics);
        v.integer("max_event_bytes", s.max_event_bytes);
        v.integer("write_timeout_seconds", s.write_timeout_seconds);
        v.integer("max_lifetime_seconds", s.max_lifetime_seconds);
    });
    v.section("auth", [&] {
        v.enumeration("mode", c.auth.mode, auth_mode_names);
        v.section("jwt", [&] {
            auto& j = c.auth.jwt;
            v.field("secret", j.secret);
            v.field("algorithms", j.algorithms);
            v.field("public_key_file", j.public_key_file);
            v.field("cookie", j.cookie);
            v.field("query_param", j.query_param);
            v.field("user_claim", j.user_claim);
            v.field("topics_claim", j.topics_claim);
            v.integer("leeway_seconds", j.leeway_seconds);
            v.field("audience", j.audience);
            v.field("issuer", j.issuer);
        });
        v.integer("expiry_notice_seconds", c.auth.expiry_notice_seconds);
        v.integer("revocation_ttl_seconds", c.auth.revocation_ttl_seconds);
    });
    v.section("admin", [&] {
        v.field("api_key", c.admin.api_key);
        v.field("api_key_file", c.admin.api_key_file);
    });
    v.section("cors", [&] {
        v.field("allowed_origins", c.cors.allowed_origins);
        v.field("allow_credentials", c.cors.allow_credentials);
    });
    v.section("redis", [&] {
        auto& r = c.redis;
        v.enumeration("mode", r.deployment, redis_deployment_names);
        v.field("url", r.url);
        v.field("prefix", r.prefix);
        v.enumeration("subscribe_mode", r.mode, subscribe_mode_names);
        v.field("username", r.username);
        v.field("password", r.password);
        v.field("password_file", r.password_file);
        v.section("tls", [&] {
            v.field("ca_file", r.tls.ca_file);
            v.field("cert_file", r.tls.cert_file);
            v.field("key_file", r.tls.key_file);
            v.field("server_name", r.tls.server_name);
            v.field("verify", r.tls.verify);
        });
        v.section("sentinel", [&] {
            v.field("master_name", r.sentinel.master_name);
            v.field("username", r.sentinel.username);
            v.field("password", r.sentinel.password);
        });
        v.integer("reconnect_min_ms", r.reconnect_min_ms);
        v.integer("reconnect_max_ms", r.reconnect_max_ms);
    });
    v.section("history", [&] {
        v.field("enabled", c.history.enabled);
        v.integer("max_len", c.history.max_len);
        v.integer("ttl_seconds", c.history.ttl_seconds);
    });
    v.section("presence", [&] {
        auto& p = c.presence;
        v.field("enabled", p.enabled);
        v.integer("offline_grace_seconds", p.offline_grace_seconds);
        v.integer("instance_ttl_seconds", p.instance_ttl_seconds);
        v.integer("heartbeat_ms", p.heartbeat_ms);
        v.integer("flush_ms", p.flush_ms);
        v.integer("stream_max_len", p.stream_max_len);
        v.field("lifecycle_stream", p.lifecycle_stream);
        v.integer("lifecycle_max_len", p.lifecycle_max_len);
    });
    v.section("log", [&] {
        v.one_of("level", c.log.level, log_level_names);
        v.enumeration("format", c.log.format, log_format_names);
    });
}

// A value as it appears in an error message: JSON text, cut short so the message stays one line.
std::string show(const json& value) {
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    constexpr std::size_t limit = 60;
    if (text.size() > limit) {
        text.resize(limit);
        text += "...";
    }
    return text;
}

template <std::size_t N>
std::string list_names(const std::array<std::string_view, N>& names) {
    std::string out;
    for (std::size_t i = 0; i < N; ++i) {
        if (i) out += ", ";
        out += '"';
        out += names[i];
        out += '"';
    }
    return out;
}

template <class E, std::size_t N>
std::string list_names(const enum_name<E> (&names)[N]) {
    std::array<std::string_view, N> plain;
    for (std::size_t i = 0; i < N; ++i) plain[i] = names[i].name;
    return list_names(plain);
}

class json_reader {
public:
    explicit json_reader(const json& root) : current_(&root) {}

    void run(gateway_config& cfg) {
        if (!current_->is_object())
            throw config_error("config: expected a JSON object at the top level, got " +
                               show(*current_));
        describe(cfg, *this);
        reject_unknown();
    }

    template <class Body>
    void section(const char* key, Body&& body) {
        const json* value = find(key);
        if (!value) return;
        if (!value->is_object()) fail(key, "expected an object", *value);
        const json* saved_current = current_;
        std::string saved_path = path_;
        std::set<std::string> saved_seen = std::move(seen_);
        current_ = value;
        path_ = dotted(key);
        seen_.clear();
        body();
        reject_unknown();
        current_ = saved_current;
        path_ = std::move(saved_path);
        seen_ = std::move(saved_seen);
    }

    void field(const char* key, std::string& out) {
        if (const json* value = find(key)) {
            if (!value->is_string()) fail(key, "expected a string", *value);
            out = value->get<std::string>();
        }
    }

    void field(const char* key, bool& out) {
        if (const json* value = find(key)) {
            if (!value->is_boolean()) fail(key, "expected true or false", *value);
            out = value->get<bool>();
        }
    }

    void field(const char* key, std::vector<std::string>& out) {
        const json* value = find(key);
        if (!value) return;
        if (!value->is_array()) fail(key, "expected an array of strings", *value);
        std::vector<std::string> items;
        for (std::size_t i = 0; i < value->size(); ++i) {
            const json& item = (*value)[i];
            if (!item.is_string())
                throw config_error(dotted(key) + "[" + std::to_string(i) +
                                   "]: expected a string, got " + show(item));
            items.push_back(item.get<std::string>());
        }
        out = std::move(items);
    }

    template <class T>
    void integer(const char* key, T& out, std::uint64_t min = 0,
                 std::uint64_t max = std::numeric_limits<T>::max()) {
        static_assert(std::is_unsigned_v<T>);
        const json* value = find(key);
        if (!value) return;
        bool ok = value->is_number_unsigned();
        std::uint64_t n = ok ? value->get<std::uint64_t>() : 0;
        if (!ok || n < min || n > max)
            fail(key, "expected an integer in " + std::to_string(min) + ".." + std::to_string(max),
                 *value);
        out = static_cast<T>(n);
    }

    template <class E, std::size_t N>
    void enumeration(const char* key, E& out, const enum_name<E> (&names)[N]) {
        const json* value = find(key);
        if (!value) return;
        if (value->is_string()) {
            const auto& text = value->get_ref<const std::string&>();
            for (const auto& n : names) {
                if (text == n.name) {
                    out = n.value;
                    return;
                }
            }
        }
        fail(key, "expected one of " + list_names(names), *value);
    }

    template <std::size_t N>
    void one_of(const char* key, std::string& out, const std::array<std::string_view, N>& names) {
        const json* value = find(key);
        if (!value) return;
        if (value->is_string()) {
            const auto& text = value->get_ref<const std::string&>();
            if (std::find(names.begin(), names.end(), text) != names.end()) {
                out = text;
                return;
            }
        }
        fail(key, "expected one of " + list_names(names), *value);
    }

private:
    const json* find(const char* key) {
        seen_.insert(key);
        auto it = current_->find(key);
        return it == current_->end() ? nullptr : &*it;
    }

    std::string dotted(std::string_view key) const {
        return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
    }

    [[noreturn]] void fail(const char* key, const std::string& problem, const json& got) const {
        throw config_error(dotted(key) + ": " + problem + ", got " + show(got));
    }

    void reject_unknown() const {
        for (const auto& item : current_->items())
            if (!seen_.count(item.key()))
                throw config_error("unknown key '" + dotted(item.key()) + "'");
    }

    const json* current_;
    std::string path_;
    std::set<std::string> seen_;
};

class json_writer {
public:
    ordered_json take(const gateway_config& cfg) {
        describe(cfg, *this);
        return std::move(root_);
    }

    template <class Body>
    void section(const char* key, Body&& body) {
        // Safe to hold: only the child gains keys while body runs, so the parent's storage
        // (which owns the child) is not reallocated underneath us.
        ordered_json* saved = current_;
        current_ = &((*current_)[key] = ordered_json::object());
        body();
        current_ = saved;
    }

    template <class T>
    void field(const char* key, const T& value) {
        (*current_)[key] = value;
    }

    template <class T>
    void integer(const char* key, const T& value, std::uint64_t = 0, std::uint64_t = 0) {
        (*current_)[key] = static_cast<std::uint64_t>(value);
    }

    template <class E, std::size_t N>
    void enumeration(const char* key, const E& value, const enum_name<E> (&names)[N]) {
        for (const auto& n : names) {
            if (n.value == value) {
                (*current_)[key] = n.name;
                return;
            }
        }
        (*current_)[key] = nullptr; // unreachable with a well-formed enum value
    }

    template <std::size_t N>
    void one_of(const char* key, const std::string& value, const std::array<std::string_view, N>&) {
        (*current_)[key] = value;
    }

private:
    ordered_json root_ = ordered_json::object();
    ordered_json* current_ = &root_;
};

[[noreturn]] void invalid(const std::string& key, const std::string& problem) {
    throw config_error(key + ": " + problem);
}

void check_range(const char* key, std::uint64_t value, std::uint64_t min, std::uint64_t max) {
    if (value < min || value > max)
        invalid(key, "must be in " + std::to_string(min) + ".." + std::to_string(max) + ", got " +
                         std::to_string(value));
}

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    return text;
}

bool has_space(const std::string& text) {
    return std::any_of(text.begin(), text.end(),
                       [](unsigned char ch) { return ch <= ' ' || ch == 0x7f; });
}

} // namespace

void apply_json(gateway_config& cfg, const nlohmann::json& j) {
    // Work on a copy so a failure halfway leaves the caller's config untouched.
    gateway_config next = cfg;
    json_reader(j).run(next);
    cfg = std::move(next);
}

gateway_config load_config_file(const std::string& path) {
    std::error_code ec;
    if (std::filesystem::is_directory(path, ec))
        throw config_error(path + ": cannot read: is a directory");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error(path + ": cannot open: " + std::strerror(errno));
    std::ostringstream buffer;
    buffer << in.rdbuf();
    if (in.bad()) throw config_error(path + ": cannot read: " + std::strerror(errno));

    json parsed;
    try {
        parsed = json::parse(buffer.str());
    } catch (const json::parse_error& e) {
        // nlohmann prefixes "[json.exception.parse_error.101] "; operators only need the rest.
        std::string message = e.what();
        if (auto pos = message.find("] ");
            message.starts_with("[json.exception") && pos != std::string::npos)
            message.erase(0, pos + 2);
        throw config_error(path + ": invalid JSON: " + one_line(message));
    }

    gateway_config cfg;
    try {
        apply_json(cfg, parsed);
    } catch (const config_error& e) {
        throw config_error(path + ": " + e.what());
    }
    return cfg;
}

void validate(const gateway_config& cfg) {
    const auto& server = cfg.server;
    if (server.host.empty()) invalid("server.host", "must not be empty");
    if (server.admin_host.empty()) invalid("server.admin_host", "must not be empty");
    check_range("server.port", server.port, 1, 65535);
    check_range("server.admin_port", server.admin_port, 1, 65535);
    if (server.port == server.admin_port)
        invalid("server.admin_port",
                "must differ from server.port (both are " + std::to_string(server.port) + ")");
    check_range("server.threads", server.threads, 0, max_shards);
    check_range("server.max_header_bytes", server.max_header_bytes, 1024, 1048576);
    check_range("server.max_target_bytes", server.max_target_bytes, 64, server.max_header_bytes);
    check_range("server.handshake_timeout_ms", server.handshake_timeout_ms, 100, 600000);

    const auto& sse = cfg.sse;
    if (!sse.path.starts_with('/'))
        invalid("sse.path", "must start with '/', got \"" + sse.path + "\"");
    check_range("sse.heartbeat_seconds", sse.heartbeat_seconds, 1, 3600);
    check_range("sse.retry_ms", sse.retry_ms, 0, 3600000);
    check_range("sse.max_queue_bytes", sse.max_queue_bytes, 4096,
                std::numeric_limits<std::uint64_t>::max());
    check_range("sse.max_topics", sse.max_topics, 0, 1024);
    check_range("sse.max_event_bytes", sse.max_event_bytes, 16, 16777216);
    check_range("sse.write_timeout_seconds", sse.write_timeout_seconds, 1, 3600);
    if (sse.max_lifetime_seconds != 0)
        check_range("sse.max_lifetime_seconds", sse.max_lifetime_seconds, 10, 31536000);

    const auto& jwt = cfg.auth.jwt;
    if (jwt.algorithms.empty())
        invalid("auth.jwt.algorithms",
                "must list at least one of " + list_names(jwt_algorithm_names));
    bool wants_secret = false;
    std::string wants_key; // first algorithm that needs a public key, for the message
    for (const auto& alg : jwt.algorithms) {
        if (std::find(jwt_algorithm_names.begin(), jwt_algorithm_names.end(), alg) ==
            jwt_algorithm_names.end())
            invalid("auth.jwt.algorithms", "unsupported algorithm \"" + alg + "\" (expected " +
                                               list_names(jwt_algorithm_names) + ")");
        if (is_hmac_algorithm(alg))
            wants_secret = true;
        else if (wants_key.empty())
            wants_key = alg;
    }
    if (cfg.auth.mode == auth_mode::jwt) {
        if (wants_secret && jwt.secret.empty())
            invalid("auth.jwt.secret",
                    "required when auth.mode is \"jwt\" and algorithms include an HS* algorithm");
        if (!wants_key.empty() && jwt.public_key_file.empty())
            invalid("auth.jwt.public_key_file",
                    "required when auth.mode is \"jwt\" and algorithms include " + wants_key);
    }

    check_range("auth.revocation_ttl_seconds", cfg.auth.revocation_ttl_seconds, 1, 31536000);
    check_range("auth.expiry_notice_seconds", cfg.auth.expiry_notice_seconds, 0, 86400);
    if (!cfg.admin.api_key.empty() && !cfg.admin.api_key_file.empty())
        invalid("admin.api_key_file", "set either admin.api_key or admin.api_key_file, not both");
    if (has_space(cfg.admin.api_key))
        invalid("admin.api_key", "must not contain spaces or control characters");
    if (!cfg.admin.api_key_file.empty()) {
        if (std::ifstream probe(cfg.admin.api_key_file, std::ios::binary); !probe)
            invalid("admin.api_key_file",
                    "cannot read " + cfg.admin.api_key_file + ": " + std::strerror(errno));
    }

    for (const auto& origin : cfg.cors.allowed_origins) {
        if (origin.empty()) invalid("cors.allowed_origins", "entries must not be empty");
        if (origin.ends_with('/'))
            invalid("cors.allowed_origins",
                    "\"" + origin + "\" must not end with '/' (an origin has no path)");
        if (origin == "*" && cfg.cors.allow_credentials)
            invalid("cors.allowed_origins",
                    "\"*\" is not allowed when cors.allow_credentials is true");
    }

    const auto& redis = cfg.redis;
    const bool sentinel = redis.deployment == redis_deployment::sentinel;
    if (!redis.standalone()) {
        try {
            const auto urls = parse_redis_url_list(redis.url);
            if (redis.deployment == redis_deployment::single && urls.size() > 1)
                invalid("redis.url",
                        "lists " + std::to_string(urls.size()) +
                            " servers; only redis.mode \"sentinel\" or \"cluster\" takes a list");
        } catch (const std::invalid_argument& e) {
            invalid("redis.url",
                    std::string(e.what()) + ", got \"" + mask_redis_url(redis.url) + "\"");
        }
    }
    if (redis.deployment == redis_deployment::cluster && redis.standalone())
        invalid("redis.url", "redis.mode \"cluster\" needs the URLs of one or more nodes");
    // A cluster stream's id holds one cursor component per channel (core/cluster_cursor.hpp):
    // the user's, broadcast and the topics, at most cluster_cursor::max_components.
    if (redis.deployment == redis_deployment::cluster && cfg.history.enabled &&
        cfg.sse.max_topics + 2 > cluster_cursor::max_components)
        invalid("sse.max_topics",
                "must be at most " + std::to_string(cluster_cursor::max_components - 2) +
                    " with redis.mode \"cluster\" and history enabled: a stream's id holds a "
                    "position per channel");
    if (sentinel && redis.standalone())
        invalid("redis.url", "redis.mode \"sentinel\" needs the sentinels' URLs");
    if (sentinel && redis.sentinel.master_name.empty())
        invalid("redis.sentinel.master_name",
                "required when redis.mode is \"sentinel\" (the name the sentinels monitor)");
    if (!redis.password.empty() && !redis.password_file.empty())
        invalid("redis.password_file",
                "set either redis.password or redis.password_file, not both");
    if (!redis.standalone()) {
        const bool tls = redis.url.starts_with("rediss://");
        const auto& t = redis.tls;
        if (!tls && !(t.ca_file.empty() && t.cert_file.empty() && t.key_file.empty() &&
                      t.server_name.empty()))
            invalid("redis.tls",
                    "set, but redis.url is not rediss:// (the link would not use TLS)");
        if (t.cert_file.empty() != t.key_file.empty())
            invalid(t.cert_file.empty() ? "redis.tls.cert_file" : "redis.tls.key_file",
                    "a client certificate needs both cert_file and key_file");
        for (const auto& [key, path] : {std::pair{"redis.tls.ca_file", &t.ca_file},
                                        std::pair{"redis.tls.cert_file", &t.cert_file},
                                        std::pair{"redis.tls.key_file", &t.key_file},
                                        std::pair{"redis.password_file", &redis.password_file}}) {
            if (path->empty()) continue;
            if (std::ifstream probe(*path, std::ios::binary); !probe)
                invalid(key, "cannot read " + *path + ": " + std::strerror(errno));
        }
    }
    if (redis.prefix.empty()) invalid("redis.prefix", "must not be empty");
    if (has_space(redis.prefix))
        invalid("redis.prefix", "must not contain spaces, got \"" + redis.prefix + "\"");
    if (redis.reconnect_min_ms > redis.reconnect_max_ms)
        invalid("redis.reconnect_min_ms", "must not exceed redis.reconnect_max_ms (" +
                                              std::to_string(redis.reconnect_min_ms) + " > " +
                                              std::to_string(redis.reconnect_max_ms) + ")");

    if (cfg.history.max_len < 1) invalid("history.max_len", "must be at least 1, got 0");

    const auto& presence = cfg.presence;
    // At least a second: an instance re-registering after a Redis outage sends its counts in
    // several calls, and no offline may fall due between two of them.
    check_range("presence.offline_grace_seconds", presence.offline_grace_seconds, 1, 86400);
    check_range("presence.heartbeat_ms", presence.heartbeat_ms, 100, 60000);
    check_range("presence.flush_ms", presence.flush_ms, 10, 5000);
    check_range("presence.instance_ttl_seconds", presence.instance_ttl_seconds, 2, 3600);
    if (std::uint64_t(presence.instance_ttl_seconds) * 1000 < 3ull * presence.heartbeat_ms)
        invalid("presence.instance_ttl_seconds",
                "must be at least three heartbeats (presence.heartbeat_ms = " +
                    std::to_string(presence.heartbeat_ms) +
                    "), or one late heartbeat would make a live instance count as dead");
    check_range("presence.stream_max_len", presence.stream_max_len, 1, 100000000);
    check_range("presence.lifecycle_max_len", presence.lifecycle_max_len, 1, 100000000);

    if (std::find(log_level_names.begin(), log_level_names.end(), cfg.log.level) ==
        log_level_names.end())
        invalid("log.level", "expected one of " + list_names(log_level_names) + ", got \"" +
                                 cfg.log.level + "\"");
}

namespace {

/// The first line of a secret file, without its line break (files written by `echo` end in one).
std::string read_secret_file(const std::string& key, const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw config_error(key + ": cannot read " + path + ": " + std::strerror(errno));
    std::string line;
    std::getline(in, line);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) throw config_error(key + ": " + path + " is empty");
    return line;
}

} // namespace

redis_endpoint redis_endpoint_of(const redis_config& redis) {
    redis_endpoint ep;
    if (redis.deployment != redis_deployment::single) {
        // Where the nodes are comes from the sentinels or the cluster; how to log in to them
        // and whether with TLS, from the config.
        ep.tls = parse_redis_url_list(redis.url).front().tls;
        ep.host.clear();
    } else {
        ep = parse_redis_url(redis.url);
    }
    ep.tls_options = redis.tls;
    if (!redis.username.empty()) ep.username = redis.username;
    if (!redis.password_file.empty())
        ep.password = read_secret_file("redis.password_file", redis.password_file);
    else if (!redis.password.empty())
        ep.password = redis.password;
    return ep;
}

std::vector<redis_endpoint> redis_seeds_of(const redis_config& redis) {
    const auto credentials = redis_endpoint_of(redis);
    auto seeds = parse_redis_url_list(redis.url);
    for (auto& s : seeds) {
        s.tls_options = redis.tls;
        s.db = 0;
        if (!credentials.username.empty()) s.username = credentials.username;
        if (!credentials.password.empty()) s.password = credentials.password;
    }
    return seeds;
}

std::vector<redis_endpoint> redis_sentinels_of(const redis_config& redis) {
    auto sentinels = parse_redis_url_list(redis.url);
    for (auto& s : sentinels) {
        s.tls_options = redis.tls;
        s.db = 0;
        if (!redis.sentinel.username.empty()) s.username = redis.sentinel.username;
        if (!redis.sentinel.password.empty()) s.password = redis.sentinel.password;
    }
    return sentinels;
}

std::string admin_key_of(const admin_config& admin) {
    if (admin.api_key_file.empty()) return admin.api_key;
    auto key = read_secret_file("admin.api_key_file", admin.api_key_file);
    if (has_space(key))
        throw config_error("admin.api_key_file: the key in " + admin.api_key_file +
                           " must not contain spaces or control characters");
    return key;
}

std::string effective_config_json(const gateway_config& cfg) {
    ordered_json out = json_writer().take(cfg);
    if (!cfg.auth.jwt.secret.empty()) out["auth"]["jwt"]["secret"] = "***";
    if (!cfg.admin.api_key.empty()) out["admin"]["api_key"] = "***";
    out["redis"]["url"] = mask_redis_url(cfg.redis.url);
    if (!cfg.redis.password.empty()) out["redis"]["password"] = "***";
    if (!cfg.redis.sentinel.password.empty()) out["redis"]["sentinel"]["password"] = "***";
    return out.dump(2, ' ', false, ordered_json::error_handler_t::replace);
}

} // namespace ssegw
