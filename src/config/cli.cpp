#include <ssegw/config/cli.hpp>
#include <ssegw/config/config_loader.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <filesystem>

#include <string_view>
#include <unistd.h> // environ
#include <vector>

#ifndef SSEGW_VERSION
#define SSEGW_VERSION "0.1.0"
#endif

namespace ssegw {
namespace {

constexpr const char* default_config_path = "config/gateway.json";

/// The SSEGW_* variables the gateway reads: apply_env() and SSEGW_CONFIG, listed once for the
/// help text and for warning about the others.
struct env_variable {
    std::string_view name;
    std::string_view meaning;
};
constexpr env_variable env_variables[] = {
    {"SSEGW_CONFIG", "config file, like --config"},
    {"SSEGW_HOST", "server.host"},
    {"SSEGW_PORT", "server.port"},
    {"SSEGW_ADMIN_HOST", "server.admin_host"},
    {"SSEGW_ADMIN_PORT", "server.admin_port"},
    {"SSEGW_THREADS", "server.threads"},
    {"SSEGW_REDIS_URL", "redis.url (\"none\" = standalone)"},
    {"SSEGW_REDIS_PASSWORD", "redis.password (replaces redis.password_file)"},
    {"SSEGW_AUTH_MODE", "auth.mode: jwt or none"},
    {"SSEGW_JWT_SECRET", "auth.jwt.secret (the HMAC key)"},
    {"SSEGW_ADMIN_API_KEY", "admin.api_key (replaces admin.api_key_file)"},
    {"SSEGW_LOG_LEVEL", "log.level"},
};

std::vector<std::string> unknown_env_warnings(const std::vector<std::string>& names) {
    std::vector<std::string> out;
    for (const auto& name : names) {
        bool known = false;
        for (const auto& v : env_variables) known = known || v.name == name;
        if (!known)
            out.push_back("environment variable " + name +
                          " is not one sse-gateway reads (ignored; see --help for the list)");
    }
    return out;
}

/// Empty when `url` is "none", empty or Redis URLs the server can connect to; else the problem.
std::string redis_url_problem(const std::string& url) {
    if (is_standalone_url(url)) return {};
    try {
        parse_redis_url_list(url); // a list is for redis.mode "sentinel"; validate() checks
        return {};
    } catch (const std::invalid_argument& e) {
        return std::string(e.what()) + ", got \"" + mask_redis_url(url) + "\"";
    }
}

bool is_log_level(std::string_view level) {
    return std::find(log_level_names.begin(), log_level_names.end(), level) !=
           log_level_names.end();
}

std::string log_level_list() {
    std::string out;
    for (auto name : log_level_names) out += (out.empty() ? "" : ", ") + std::string(name);
    return out;
}

std::string trim(std::string_view text) {
    const auto first = text.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos) return {};
    const auto last = text.find_last_not_of(" \t\r\n");
    return std::string(text.substr(first, last - first + 1));
}

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    std::replace(text.begin(), text.end(), '\r', ' ');
    return trim(text);
}

cli_outcome error_outcome(const std::string& message) {
    return {cli_action::error, {}, "sse-gateway: " + one_line(message) + "\n", 2, {}};
}

/// Environment values, each checked where it is read so the message names the variable.
class env_reader {
public:
    explicit env_reader(const env_lookup& env) : env_(env) {}

    // Empty counts as unset: compose files often pass `VAR=${VAR:-}`, which must not wipe a
    // value from the config file (use "none" to select standalone explicitly).
    std::optional<std::string> get(const char* name) const {
        if (!env_) return std::nullopt;
        auto value = env_(name);
        if (!value || value->empty()) return std::nullopt;
        return value;
    }

    template <class T>
    void integer(const char* name, T& out, std::uint64_t min, std::uint64_t max) const {
        auto raw = get(name);
        if (!raw) return;
        const std::string text = trim(*raw);
        std::uint64_t value = 0;
        auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
        if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < min ||
            value > max)
            throw config_error(std::string(name) + ": expected an integer in " +
                               std::to_string(min) + ".." + std::to_string(max) + ", got \"" +
                               *raw + "\"");
        out = static_cast<T>(value);
    }

    void string(const char* name, std::string& out) const {
        if (auto raw = get(name)) out = *raw;
    }

private:
    const env_lookup& env_;
};

void apply_env(gateway_config& cfg, const env_reader& env) {
    env.string("SSEGW_HOST", cfg.server.host);
    env.integer("SSEGW_PORT", cfg.server.port, 1, 65535);
    env.string("SSEGW_ADMIN_HOST", cfg.server.admin_host);
    env.integer("SSEGW_ADMIN_PORT", cfg.server.admin_port, 1, 65535);
    env.integer("SSEGW_THREADS", cfg.server.threads, 0, max_shards);
    if (auto url = env.get("SSEGW_REDIS_URL")) {
        if (auto problem = redis_url_problem(*url); !problem.empty())
            throw config_error("SSEGW_REDIS_URL: " + problem);
        cfg.redis.url = *url;
    }
    if (auto password = env.get("SSEGW_REDIS_PASSWORD")) {
        cfg.redis.password = *password;
        cfg.redis.password_file.clear();
    }
    if (auto mode = env.get("SSEGW_AUTH_MODE")) {
        if (*mode == "jwt")
            cfg.auth.mode = auth_mode::jwt;
        else if (*mode == "none")
            cfg.auth.mode = auth_mode::none;
        else
            throw config_error("SSEGW_AUTH_MODE: expected \"jwt\" or \"none\", got \"" + *mode +
                               "\"");
    }
    env.string("SSEGW_JWT_SECRET", cfg.auth.jwt.secret);
    if (auto key = env.get("SSEGW_ADMIN_API_KEY")) {
        cfg.admin.api_key = *key;
        cfg.admin.api_key_file.clear();
    }
    if (auto level = env.get("SSEGW_LOG_LEVEL")) {
        if (!is_log_level(*level))
            throw config_error("SSEGW_LOG_LEVEL: expected one of " + log_level_list() + ", got \"" +
                               *level + "\"");
        cfg.log.level = *level;
    }
}

// An explicitly named file must exist; only the implicit default may be silently absent.
gateway_config load_named(const std::string& path, const std::string& source) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw config_error(source + ": no such file: " + path);
    if (std::filesystem::is_directory(path, ec))
        throw config_error(source + ": is a directory: " + path);
    return load_config_file(path);
}

cli_outcome parse_or_throw(int argc, const char* const* argv, const env_lookup& env_fn,
                           const std::vector<std::string>& env_names) {
    CLI::App app{"Server-Sent Events gateway", "sse-gateway"};
    // Our own --help text lists the env variables and exit codes, which CLI11's cannot.
    app.set_help_flag();
    // Repeating a flag keeps the last value, as wrapper scripts that append overrides expect.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

    std::string config_path, redis_url, log_level;
    unsigned port = 0, admin_port = 0, threads = 0;
    bool check_config = false, health_check = false, version = false, help = false;

    // type_name keeps CLI11's "missing value" message readable ("1 required N missing").
    auto* config_opt = app.add_option("--config", config_path, "config file")->type_name("FILE");
    auto* port_opt = app.add_option("--port", port, "public port")
                         ->check(CLI::Range(1u, 65535u))
                         ->type_name("N");
    auto* admin_port_opt = app.add_option("--admin-port", admin_port, "admin port")
                               ->check(CLI::Range(1u, 65535u))
                               ->type_name("N");
    auto* redis_opt =
        app.add_option("--redis", redis_url, "Redis URL or none")
            ->check(CLI::Validator([](std::string& url) { return redis_url_problem(url); }, "URL"))
            ->type_name("URL");
    auto* threads_opt = app.add_option("--threads", threads, "shard threads")
                            ->check(CLI::Range(0u, max_shards))
                            ->type_name("N");
    auto* log_level_opt = app.add_option("--log-level", log_level, "log level")
                              ->check(CLI::IsMember(std::vector<std::string>(
                                  log_level_names.begin(), log_level_names.end())))
                              ->type_name("LEVEL");
    app.add_flag("--check-config", check_config, "validate and print the effective config");
    app.add_flag("--health-check", health_check, "probe /readyz of the configured admin port");
    app.add_flag("--version", version, "print the version");
    app.add_flag("-h,--help", help, "print help");
    // Extras are collected rather than thrown so the message can name the first offender in
    // command-line order (CLI11's own ExtrasError lists them reversed).
    app.allow_extras();

    if (argc < 1 || argv == nullptr) {
        static const char* const no_args[] = {"sse-gateway"};
        app.parse(1, no_args);
    } else {
        app.parse(argc, argv);
    }

    if (help) return {cli_action::help, {}, help_text(), 0, {}};
    if (version) return {cli_action::version, {}, version_string() + "\n", 0, {}};
    if (const auto extras = app.remaining(); !extras.empty()) {
        const std::string& first = extras.front();
        if (first.starts_with('-')) throw config_error(first + ": unknown option (see --help)");
        throw config_error("unexpected argument '" + first + "' (see --help)");
    }

    const env_reader env(env_fn);
    gateway_config cfg;
    if (config_opt->count() > 0) {
        cfg = load_named(config_path, "--config");
    } else if (auto from_env = env.get("SSEGW_CONFIG")) {
        cfg = load_named(*from_env, "SSEGW_CONFIG");
    } else if (std::error_code ec; std::filesystem::exists(default_config_path, ec)) {
        cfg = load_config_file(default_config_path);
    }

    apply_env(cfg, env);

    if (port_opt->count() > 0) cfg.server.port = static_cast<std::uint16_t>(port);
    if (admin_port_opt->count() > 0) cfg.server.admin_port = static_cast<std::uint16_t>(admin_port);
    if (redis_opt->count() > 0) cfg.redis.url = redis_url;
    if (threads_opt->count() > 0) cfg.server.threads = threads;
    if (log_level_opt->count() > 0) cfg.log.level = log_level;

    validate(cfg);

    if (check_config) {
        std::string text = effective_config_json(cfg) + "\n";
        return {cli_action::check_config, std::move(cfg), std::move(text), 0,
                unknown_env_warnings(env_names)};
    }
    // The probe of a container's HEALTHCHECK: its output lands in the health log, so no warnings.
    if (health_check) return {cli_action::health_check, std::move(cfg), {}, 0, {}};
    return {cli_action::run, std::move(cfg), {}, 0, unknown_env_warnings(env_names)};
}

} // namespace

cli_outcome parse_cli(int argc, const char* const* argv, const env_lookup& env,
                      const std::vector<std::string>& env_names) {
    try {
        return parse_or_throw(argc, argv, env, env_names);
    } catch (const config_error& e) {
        return error_outcome(e.what());
    } catch (const CLI::ArgumentMismatch& e) {
        // CLI11 says "--port: 1 required N:UINT in [1 - 65535] missing"; say it plainly.
        const std::string message = e.what();
        const auto colon = message.find(": ");
        if (message.ends_with(" missing") && colon != std::string::npos)
            return error_outcome(message.substr(0, colon) + ": a value is required (see --help)");
        return error_outcome(message);
    } catch (const CLI::ParseError& e) {
        // CLI11 would print usage on its own; we keep to one line naming the flag.
        return error_outcome(e.what());
    } catch (const std::exception& e) {
        return error_outcome(e.what());
    }
}

env_lookup process_env() {
    return [](const char* name) -> std::optional<std::string> {
        if (const char* value = std::getenv(name)) return std::string(value);
        return std::nullopt;
    };
}

std::vector<std::string> process_env_names() {
    std::vector<std::string> out;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string_view entry(*e);
        if (entry.starts_with("SSEGW_")) out.emplace_back(entry.substr(0, entry.find('=')));
    }
    return out;
}

std::string version_string() { return std::string("sse-gateway ") + SSEGW_VERSION; }

std::string help_text() {
    std::string text = R"(Usage: sse-gateway [OPTIONS]

Server-Sent Events gateway: keeps browser EventSource streams open and delivers the events
backends publish to Redis (or to POST /publish on the admin port when running standalone).

Options:
  --config FILE       JSON config file (default: config/gateway.json when it exists,
                      else built-in defaults)
  --port N            public SSE port, 1..65535 (server.port)
  --admin-port N      admin port: /healthz /readyz /metrics /publish (server.admin_port)
  --redis URL         redis://[[user]:password@]host[:port][/db], or "none" to run
                      standalone without Redis (redis.url)
  --threads N         shard threads, 0..)" +
                       std::to_string(max_shards) + R"(, 0 = one per core (server.threads)
  --log-level LEVEL   )" +
                       log_level_list() + R"( (log.level)
  --check-config      validate, print the effective config (secrets masked) and exit
  --health-check      GET /readyz on the admin port this config gives (a wildcard
                      admin host is probed on loopback), print the status line and exit
                      0 when it is 200, 1 otherwise (for container HEALTHCHECKs)
  --version           print the version and exit
  -h, --help          print this help and exit

Precedence: built-in defaults < config file < environment < flags.

Environment (empty values are ignored; other SSEGW_* variables are warned about):
)";
    for (const auto& v : env_variables) {
        std::string line = "  " + std::string(v.name);
        line.resize(std::max<std::size_t>(line.size() + 2, 24), ' ');
        text += line + std::string(v.meaning) + "\n";
    }
    text += R"(
Exit codes:
  0  clean shutdown after SIGTERM/SIGINT, valid --check-config, --help, --version,
     --health-check of a ready gateway
  1  fatal error while running (for example a port that cannot be bound), --health-check of
     a gateway that is not ready or does not answer within 2 s
  2  bad command line, environment variable or configuration (one line on stderr)
)";
    return text;
}

} // namespace ssegw
