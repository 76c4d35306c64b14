// sse-gateway: command line only. Parse flags, env and config; print what was asked for, or
// start the server. Start-up problems are one line on stderr and a non-zero exit.

#include <exception>
#include <iostream>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "ssegw/app/server.hpp"
#include "ssegw/config/cli.hpp"

namespace {

void setup_logging(const ssegw::log_config& cfg) {
    auto logger = spdlog::stderr_color_mt("sse-gateway");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(cfg.level));
    if (cfg.format == ssegw::log_format::json)
        spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","thread":%t,"msg":"%v"})");
    else
        spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%-5l%$ [%t] %v");
}

} // namespace

int main(int argc, char** argv) {
    const auto outcome = ssegw::parse_cli(argc, argv, ssegw::process_env());
    switch (outcome.action) {
    case ssegw::cli_action::error:
        std::cerr << outcome.text;
        return outcome.exit_code;
    case ssegw::cli_action::help:
    case ssegw::cli_action::version:
    case ssegw::cli_action::check_config:
        std::cout << outcome.text;
        return outcome.exit_code;
    case ssegw::cli_action::run:
        break;
    }
    try {
        setup_logging(outcome.config.log);
        ssegw::server server(outcome.config);
        return server.run();
    } catch (const std::exception& e) {
        std::cerr << "sse-gateway: cannot start: " << e.what() << '\n';
        return 1;
    }
}
