// sse-gateway: command line only. Parse flags, env and config; print what was asked for, or
// start the server. Start-up problems are one line on stderr and a non-zero exit.

#include <exception>
#include <iostream>

#include <spdlog/spdlog.h>

#include "ssegw/app/health_check.hpp"
#include "ssegw/app/logging.hpp"
#include "ssegw/app/server.hpp"
#include "ssegw/config/cli.hpp"

int main(int argc, char** argv) {
    const auto outcome =
        ssegw::parse_cli(argc, argv, ssegw::process_env(), ssegw::process_env_names());
    switch (outcome.action) {
    case ssegw::cli_action::error: std::cerr << outcome.text; return outcome.exit_code;
    case ssegw::cli_action::help:
    case ssegw::cli_action::version:
    case ssegw::cli_action::check_config:
        for (const auto& w : outcome.warnings) std::cerr << "sse-gateway: warning: " << w << '\n';
        std::cout << outcome.text;
        return outcome.exit_code;
    case ssegw::cli_action::health_check: {
        const auto probe = ssegw::check_health(outcome.config.server);
        (probe.exit_code == 0 ? std::cout : std::cerr) << probe.text << '\n';
        return probe.exit_code;
    }
    case ssegw::cli_action::run: break;
    }
    try {
        ssegw::setup_logging(outcome.config.log);
        for (const auto& w : outcome.warnings) spdlog::warn("{}", w);
        ssegw::server server(outcome.config);
        return server.run();
    } catch (const std::exception& e) {
        std::cerr << "sse-gateway: cannot start: " << e.what() << '\n';
        return 1;
    }
}
