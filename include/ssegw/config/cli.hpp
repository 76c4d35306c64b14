#pragma once
// The command line of sse-gateway: flags, SSEGW_* environment variables and the config file
// resolved into one validated gateway_config, or into the text main should print and the exit
// code it should return. Nothing here prints or exits, so it is testable in-process.

#include <ssegw/config/config.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace ssegw {

/// Reads one environment variable; std::nullopt when unset. Injected so tests need no setenv.
using env_lookup = std::function<std::optional<std::string>(const char* name)>;

/// What main should do after parse_cli.
enum class cli_action { run, check_config, health_check, version, help, error };

/// The result of parse_cli.
struct cli_outcome {
    cli_action action = cli_action::error;
    /// The effective, validated config (run, check_config and health_check only).
    gateway_config config;
    /// What main prints verbatim (it already ends with '\n'): on stdout for help, version and
    /// check_config; on stderr for error, as one line starting with "sse-gateway: ". Empty for run.
    std::string text;
    /// 0 for run, health_check, help, version and a valid check_config; 2 for error.
    int exit_code = 0;
    /// Problems that do not stop the gateway (an unknown SSEGW_* variable, probably a typo):
    /// main logs each as a warning.
    std::vector<std::string> warnings;
};

/// Resolves defaults < config file < environment < flags, then validates. Never throws: every
/// problem (bad flag, unreadable or invalid file, bad env value, failed validation) becomes
/// cli_action::error with exit code 2 and a line naming the flag, variable or key.
/// `env_names` are the names of the SSEGW_* variables set (process_env_names()); those the
/// gateway does not read become warnings.
cli_outcome parse_cli(int argc, const char* const* argv, const env_lookup& env,
                      const std::vector<std::string>& env_names = {});

/// env_lookup backed by the real process environment (std::getenv).
env_lookup process_env();

/// The names of the process's environment variables that start with SSEGW_.
std::vector<std::string> process_env_names();

/// "sse-gateway <version>".
std::string version_string();

/// The --help text: usage, every flag, the environment variables and the exit codes.
std::string help_text();

} // namespace ssegw
