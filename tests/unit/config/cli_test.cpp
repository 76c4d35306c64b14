#include <ssegw/config/cli.hpp>
#include <ssegw/config/config_loader.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace ssegw {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// A private temp directory that is also the working directory while it lives, so the
/// implicit config/gateway.json lookup sees only what the test puts there.
class temp_cwd {
public:
    temp_cwd() : previous_(fs::current_path()) {
        std::string pattern = (fs::temp_directory_path() / "ssegw-cli-XXXXXX").string();
        if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
        path_ = pattern;
        fs::current_path(path_);
    }
    ~temp_cwd() {
        std::error_code ec;
        fs::current_path(previous_, ec);
        fs::remove_all(path_, ec);
    }
    std::string write(const std::string& name, const std::string& content) const {
        const fs::path file = path_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << content;
        return file.string();
    }

private:
    fs::path previous_;
    fs::path path_;
};

using env_map = std::map<std::string, std::string>;

cli_outcome run_cli(std::vector<std::string> args, const env_map& env = {}) {
    args.insert(args.begin(), "sse-gateway");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    argv.push_back(nullptr);
    return parse_cli(static_cast<int>(args.size()), argv.data(),
                     [&env](const char* name) -> std::optional<std::string> {
                         auto it = env.find(name);
                         if (it == env.end()) return std::nullopt;
                         return it->second;
                     });
}

// Every error must be exactly one stderr line, prefixed, with exit code 2.
void expect_error_line(const cli_outcome& out, const std::string& must_contain) {
    EXPECT_EQ(out.action, cli_action::error);
    EXPECT_EQ(out.exit_code, 2);
    EXPECT_EQ(out.text.rfind("sse-gateway: ", 0), 0u) << out.text;
    ASSERT_FALSE(out.text.empty());
    EXPECT_EQ(out.text.back(), '\n');
    EXPECT_EQ(out.text.find('\n'), out.text.size() - 1) << out.text;
    EXPECT_NE(out.text.find(must_contain), std::string::npos) << out.text;
}

// Built-in defaults need a JWT secret to validate; most tests only care about other fields.
const env_map with_secret = {{"SSEGW_JWT_SECRET", "s3cret"}};

TEST(cli, built_in_defaults_without_a_config_file) {
    temp_cwd cwd;
    const auto out = run_cli({}, with_secret);
    ASSERT_EQ(out.action, cli_action::run) << out.text;
    EXPECT_EQ(out.exit_code, 0);
    EXPECT_TRUE(out.text.empty());
    EXPECT_EQ(out.config.server.port, 8080);
    EXPECT_EQ(out.config.server.admin_port, 9090);
    EXPECT_EQ(out.config.redis.url, "redis://127.0.0.1:6379");
    EXPECT_EQ(out.config.auth.jwt.secret, "s3cret");
}

TEST(cli, defaults_fail_validation_without_a_secret) {
    temp_cwd cwd;
    expect_error_line(run_cli({}), "auth.jwt.secret");
}

TEST(cli, picks_up_config_gateway_json_from_the_working_directory) {
    temp_cwd cwd;
    cwd.write("config/gateway.json", R"({"server": {"port": 7000}, "auth": {"mode": "none"}})");
    const auto out = run_cli({});
    ASSERT_EQ(out.action, cli_action::run) << out.text;
    EXPECT_EQ(out.config.server.port, 7000);
    EXPECT_EQ(out.config.auth.mode, auth_mode::none);
}

TEST(cli, explicit_config_file) {
    temp_cwd cwd;
    cwd.write("config/gateway.json", R"({"server": {"port": 7000}})");
    const auto path =
        cwd.write("other.json", R"({"server": {"port": 7100}, "auth": {"mode": "none"}})");
    const auto out = run_cli({"--config", path});
    ASSERT_EQ(out.action, cli_action::run) << out.text;
    EXPECT_EQ(out.config.server.port, 7100);

    const auto eq = run_cli({"--config=" + path});
    ASSERT_EQ(eq.action, cli_action::run) << eq.text;
    EXPECT_EQ(eq.config.server.port, 7100);
}

TEST(cli, config_from_env_and_flag_beats_it) {
    temp_cwd cwd;
    const auto a = cwd.write("a.json", R"({"server": {"port": 7200}, "auth": {"mode": "none"}})");
    const auto b = cwd.write("b.json", R"({"server": {"port": 7300}, "auth": {"mode": "none"}})");
    const auto from_env = run_cli({}, {{"SSEGW_CONFIG", a}});
    ASSERT_EQ(from_env.action, cli_action::run) << from_env.text;
    EXPECT_EQ(from_env.config.server.port, 7200);
    const auto from_flag = run_cli({"--config", b}, {{"SSEGW_CONFIG", a}});
    ASSERT_EQ(from_flag.action, cli_action::run) << from_flag.text;
    EXPECT_EQ(from_flag.config.server.port, 7300);
}

TEST(cli, missing_explicit_config_is_an_error) {
    temp_cwd cwd;
    expect_error_line(run_cli({"--config", "nope.json"}), "--config: no such file: nope.json");
    expect_error_line(run_cli({}, {{"SSEGW_CONFIG", "nope.json"}}),
                      "SSEGW_CONFIG: no such file: nope.json");
}

TEST(cli, bad_config_file_names_file_and_key) {
    temp_cwd cwd;
    const auto path = cwd.write("bad.json", R"({"server": {"prot": 1}})");
    expect_error_line(run_cli({"--config", path}), "unknown key 'server.prot'");
    const auto syntax = cwd.write("syntax.json", "{ nope }");
    expect_error_line(run_cli({"--config", syntax}), syntax + ": invalid JSON: ");
}

TEST(cli, env_overrides_file) {
    temp_cwd cwd;
    cwd.write("config/gateway.json", R"({"server": {"port": 7000, "admin_port": 7001, "threads": 2},
        "auth": {"mode": "jwt", "jwt": {"secret": "from-file"}}, "log": {"level": "info"}})");
    const auto out = run_cli({}, {{"SSEGW_PORT", "7500"},
                                  {"SSEGW_ADMIN_PORT", "7501"},
                                  {"SSEGW_THREADS", "8"},
                                  {"SSEGW_REDIS_URL", "none"},
                                  {"SSEGW_LOG_LEVEL", "debug"},
                                  {"SSEGW_JWT_SECRET", "from-env"},
                                  {"SSEGW_HOST", "127.0.0.1"},
                                  {"SSEGW_ADMIN_HOST", "0.0.0.0"}});
    ASSERT_EQ(out.action, cli_action::run) << out.text;
    EXPECT_EQ(out.config.server.port, 7500);
    EXPECT_EQ(out.config.server.admin_port, 7501);
    EXPECT_EQ(out.config.server.threads, 8u);
    EXPECT_TRUE(out.config.redis.standalone());
    EXPECT_EQ(out.config.log.level, "debug");
    EXPECT_EQ(out.config.auth.jwt.secret, "from-env");
    EXPECT_EQ(out.config.server.host, "127.0.0.1");
    EXPECT_EQ(out.config.server.admin_host, "0.0.0.0");

    const auto none = run_cli({}, {{"SSEGW_AUTH_MODE", "none"}});
    ASSERT_EQ(none.action, cli_action::run) << none.text;
    EXPECT_EQ(none.config.auth.mode, auth_mode::none);
}

TEST(cli, empty_env_values_are_ignored) {
    temp_cwd cwd;
    const auto out =
        run_cli({}, {{"SSEGW_PORT", ""}, {"SSEGW_REDIS_URL", ""}, {"SSEGW_JWT_SECRET", "k"}});
    ASSERT_EQ(out.action, cli_action::run) << out.text;
    EXPECT_EQ(out.config.server.port, 8080);
    EXPECT_EQ(out.config.redis.url, "redis://127.0.0.1:6379");
}

TEST(cli, bad_env_values_name_the_variable) {
    temp_cwd cwd;
    expect_error_line(run_cli({}, {{"SSEGW_PORT", "abc"}}),
                      R"(SSEGW_PORT: expected an integer in 1..65535, got "abc")");
    expect_error_line(run_cli({}, {{"SSEGW_PORT", "0"}}), "SSEGW_PORT: ");
    expect_error_line(run_cli({}, {{"SSEGW_ADMIN_PORT", "65536"}}), "SSEGW_ADMIN_PORT: ");
    expect_error_line(run_cli({}, {{"SSEGW_THREADS", "-1"}}), "SSEGW_THREADS: ");
    expect_error_line(run_cli({}, {{"SSEGW_THREADS", "300"}}), "SSEGW_THREADS: ");
    expect_error_line(run_cli({}, {{"SSEGW_LOG_LEVEL", "loud"}}), "SSEGW_LOG_LEVEL: ");
    expect_error_line(run_cli({}, {{"SSEGW_AUTH_MODE", "basic"}}), "SSEGW_AUTH_MODE: ");
    expect_error_line(run_cli({}, {{"SSEGW_REDIS_URL", "http://x"}}), "SSEGW_REDIS_URL: ");
}

TEST(cli, flags_beat_env_and_file) {
    temp_cwd cwd;
    cwd.write("config/gateway.json",
              R"({"server": {"port": 7000, "threads": 2}, "auth": {"mode": "none"}})");
    const auto out = run_cli({"--port", "7600", "--admin-port", "7601", "--redis",
                              "redis://:pw@r:6380", "--threads", "16", "--log-level", "warn"},
                             {{"SSEGW_PORT", "7500"},
                              {"SSEGW_ADMIN_PORT", "7501"},
                              {"SSEGW_THREADS", "8"},
                              {"SSEGW_REDIS_URL", "none"},
                              {"SSEGW_LOG_LEVEL", "debug"}});
    ASSERT_EQ(out.action, cli_action::run) << out.text;
    EXPECT_EQ(out.config.server.port, 7600);
    EXPECT_EQ(out.config.server.admin_port, 7601);
    EXPECT_EQ(out.config.server.threads, 16u);
    EXPECT_EQ(out.config.redis.url, "redis://:pw@r:6380");
    EXPECT_EQ(out.config.log.level, "warn");
}

TEST(cli, redis_none_runs_standalone) {
    temp_cwd cwd;
    const auto out = run_cli({"--redis", "none"}, with_secret);
    ASSERT_EQ(out.action, cli_action::run) << out.text;
    EXPECT_EQ(out.config.redis.url, "none");
    EXPECT_TRUE(out.config.redis.standalone());
}

TEST(cli, repeated_flag_keeps_the_last_value) {
    temp_cwd cwd;
    const auto out = run_cli({"--port", "7001", "--port", "7002"}, with_secret);
    ASSERT_EQ(out.action, cli_action::run) << out.text;
    EXPECT_EQ(out.config.server.port, 7002);
}

TEST(cli, bad_flags_are_one_line_naming_the_flag) {
    temp_cwd cwd;
    expect_error_line(run_cli({"--port", "abc"}, with_secret), "--port");
    expect_error_line(run_cli({"--port", "0"}, with_secret), "--port");
    expect_error_line(run_cli({"--port", "65536"}, with_secret), "--port");
    expect_error_line(run_cli({"--admin-port", "x"}, with_secret), "--admin-port");
    expect_error_line(run_cli({"--threads", "257"}, with_secret), "--threads");
    expect_error_line(run_cli({"--threads", "-2"}, with_secret), "--threads");
    expect_error_line(run_cli({"--log-level", "loud"}, with_secret), "--log-level");
    expect_error_line(run_cli({"--redis", "http://x:1"}, with_secret), "--redis");
    expect_error_line(run_cli({"--port"}, with_secret), "--port");
    expect_error_line(run_cli({"--prot", "1"}, with_secret), "--prot");
    expect_error_line(run_cli({"stray"}, with_secret), "stray");
}

TEST(cli, bad_flag_message_does_not_leak_the_redis_password) {
    temp_cwd cwd;
    const auto out = run_cli({"--redis", "rediss://:hunter2@h:0"}, with_secret);
    expect_error_line(out, "--redis");
    EXPECT_EQ(out.text.find("hunter2"), std::string::npos) << out.text;
}

TEST(cli, invalid_combination_from_flags_is_an_error) {
    temp_cwd cwd;
    expect_error_line(run_cli({"--port", "9090"}, with_secret),
                      "server.admin_port: must differ from server.port");
}

TEST(cli, help_and_version) {
    temp_cwd cwd;
    for (const char* flag : {"--help", "-h"}) {
        const auto out = run_cli({flag});
        EXPECT_EQ(out.action, cli_action::help);
        EXPECT_EQ(out.exit_code, 0);
        EXPECT_EQ(out.text, help_text());
    }
    const std::string help = help_text();
    for (const char* needle : {"Usage: sse-gateway",
                               "--config FILE",
                               "--port N",
                               "--admin-port N",
                               "--redis URL",
                               "--threads N",
                               "--log-level LEVEL",
                               "--check-config",
                               "--version",
                               "-h, --help",
                               "SSEGW_PORT",
                               "SSEGW_ADMIN_PORT",
                               "SSEGW_REDIS_URL",
                               "SSEGW_THREADS",
                               "SSEGW_LOG_LEVEL",
                               "SSEGW_JWT_SECRET",
                               "SSEGW_HOST",
                               "SSEGW_ADMIN_HOST",
                               "SSEGW_AUTH_MODE",
                               "SSEGW_CONFIG",
                               "\n  0  ",
                               "\n  2  "})
        EXPECT_NE(help.find(needle), std::string::npos) << needle;

    const auto version = run_cli({"--version"});
    EXPECT_EQ(version.action, cli_action::version);
    EXPECT_EQ(version.exit_code, 0);
    EXPECT_EQ(version.text, version_string() + "\n");
    EXPECT_EQ(version_string().rfind("sse-gateway ", 0), 0u);
    EXPECT_GT(version_string().size(), std::string("sse-gateway ").size());

    // Help needs no valid config: it must work even when the config would be refused.
    cwd.write("config/gateway.json", R"({"server": {"prot": 1}})");
    EXPECT_EQ(run_cli({"--help"}).action, cli_action::help);
}

TEST(cli, check_config_prints_the_masked_effective_config) {
    temp_cwd cwd;
    const auto out = run_cli({"--check-config", "--redis", "redis://:hunter2@redis.internal:6379"},
                             {{"SSEGW_JWT_SECRET", "topsecret"}});
    ASSERT_EQ(out.action, cli_action::check_config) << out.text;
    EXPECT_EQ(out.exit_code, 0);
    EXPECT_EQ(out.text.find("topsecret"), std::string::npos);
    EXPECT_EQ(out.text.find("hunter2"), std::string::npos);
    const json printed = json::parse(out.text);
    EXPECT_EQ(printed["auth"]["jwt"]["secret"], "***");
    EXPECT_EQ(printed["redis"]["url"], "redis://:***@redis.internal:6379");
    EXPECT_EQ(out.text, effective_config_json(out.config) + "\n");
    // The real values are still in the config handed to main.
    EXPECT_EQ(out.config.auth.jwt.secret, "topsecret");
}

TEST(cli, health_check_resolves_the_same_config_the_server_would_run_with) {
    // The container's HEALTHCHECK runs `sse-gateway --health-check` with the container's
    // environment: it must probe the admin address the running gateway was given.
    temp_cwd cwd;
    const auto file =
        cwd.write("gw.json", R"({"server": {"admin_host": "0.0.0.0", "admin_port": 9191},
                                           "auth": {"mode": "none"}})");
    auto out = run_cli({"--health-check"}, {{"SSEGW_CONFIG", file}});
    ASSERT_EQ(out.action, cli_action::health_check) << out.text;
    EXPECT_EQ(out.exit_code, 0);
    EXPECT_EQ(out.config.server.admin_host, "0.0.0.0");
    EXPECT_EQ(out.config.server.admin_port, 9191);
    EXPECT_TRUE(out.warnings.empty());

    out = run_cli({"--health-check", "--config", file}, {{"SSEGW_ADMIN_PORT", "9292"}});
    ASSERT_EQ(out.action, cli_action::health_check) << out.text;
    EXPECT_EQ(out.config.server.admin_port, 9292);

    // A config the server would refuse is refused here too (exit 2, one line).
    expect_error_line(run_cli({"--health-check", "--config", "missing.json"}), "missing.json");
}

TEST(cli, admin_key_from_the_environment_replaces_the_file) {
    temp_cwd cwd;
    cwd.write("config/gateway.json", R"({"auth": {"mode": "none"},
                                         "admin": {"api_key_file": "/nonexistent"}})");
    const auto out = run_cli({"--check-config"}, {{"SSEGW_ADMIN_API_KEY", "env-key"}});
    ASSERT_EQ(out.exit_code, 0) << out.text;
    EXPECT_EQ(out.config.admin.api_key, "env-key");
    EXPECT_EQ(out.config.admin.api_key_file, "");
    EXPECT_EQ(out.text.find("env-key"), std::string::npos);
}

TEST(cli, check_config_of_an_invalid_config_exits_2) {
    temp_cwd cwd;
    cwd.write("config/gateway.json",
              R"({"sse": {"heartbeat_seconds": 0}, "auth": {"mode": "none"}})");
    expect_error_line(run_cli({"--check-config"}), "sse.heartbeat_seconds");
}

TEST(cli, a_redis_url_the_server_would_refuse_is_refused_everywhere) {
    // One parser decides for the flag, the environment and the file: --check-config used to
    // say 0 for a port the server then refused at start.
    temp_cwd cwd;
    expect_error_line(
        run_cli({"--check-config", "--redis", "redis://host:99999"}, {{"SSEGW_JWT_SECRET", "k"}}),
        "--redis");
    expect_error_line(run_cli({"--check-config"},
                              {{"SSEGW_REDIS_URL", "redis://h:0"}, {"SSEGW_JWT_SECRET", "k"}}),
                      "SSEGW_REDIS_URL: invalid redis URL: port must be 1..65535");
    cwd.write("config/gateway.json",
              R"({"redis": {"url": "redis://:pw@h:70000"}, "auth": {"mode": "none"}})");
    const auto out = run_cli({"--check-config"});
    expect_error_line(out, "redis.url: invalid redis URL: port must be 1..65535");
    EXPECT_EQ(out.text.find("pw@"), std::string::npos) << "the password is masked in the error";
}

TEST(cli, redis_password_from_the_environment_replaces_the_file_setting) {
    temp_cwd cwd;
    cwd.write("config/gateway.json",
              R"({"auth": {"mode": "none"}, "redis": {"password_file": "/nonexistent"}})");
    const auto out = run_cli({"--check-config"}, {{"SSEGW_REDIS_PASSWORD", "from-env"}});
    ASSERT_EQ(out.action, cli_action::check_config) << out.text;
    EXPECT_EQ(out.config.redis.password, "from-env");
    EXPECT_EQ(out.config.redis.password_file, "");
    EXPECT_EQ(out.text.find("from-env"), std::string::npos) << "masked in --check-config";
}

TEST(cli, unknown_ssegw_variables_are_warned_about) {
    temp_cwd cwd;
    const std::vector<const char*> argv = {"sse-gateway", "--check-config", nullptr};
    const auto out = parse_cli(2, argv.data(),
                               [](const char* name) -> std::optional<std::string> {
                                   if (std::string(name) == "SSEGW_JWT_SECRET") return "k";
                                   return std::nullopt;
                               },
                               {"SSEGW_JWT_SECRET", "SSEGW_REDIS_URLL"});
    ASSERT_EQ(out.action, cli_action::check_config) << out.text;
    ASSERT_EQ(out.warnings.size(), 1u);
    EXPECT_NE(out.warnings[0].find("SSEGW_REDIS_URLL"), std::string::npos) << out.warnings[0];
    // Every variable the help text lists is one the gateway reads, so none of them warns.
    std::vector<std::string> listed;
    const auto help = help_text();
    for (std::size_t at = help.find("\n  SSEGW_"); at != std::string::npos;
         at = help.find("\n  SSEGW_", at + 1))
        listed.push_back(help.substr(at + 3, help.find(' ', at + 3) - at - 3));
    EXPECT_GE(listed.size(), 10u);
    const auto quiet = parse_cli(
        2, argv.data(),
        [](const char* name) -> std::optional<std::string> {
            if (std::string(name) == "SSEGW_JWT_SECRET") return "k";
            return std::nullopt;
        },
        listed);
    EXPECT_TRUE(quiet.warnings.empty()) << quiet.warnings.front();
}

TEST(cli, no_arguments_at_all) {
    temp_cwd cwd;
    const char* const argv[] = {nullptr};
    const auto out = parse_cli(0, argv, [](const char* name) -> std::optional<std::string> {
        if (std::string(name) == "SSEGW_PORT") return "k";
        return std::nullopt;
    });
    // argc 0 must not crash, and the environment is still read.
    expect_error_line(out, "SSEGW_PORT");
}

} // namespace
} // namespace ssegw
