#pragma once
// `sse-gateway --health-check`: asks the gateway that the same configuration describes whether
// it is ready (GET /readyz on its admin port) and turns the answer into an exit code, so a
// container's HEALTHCHECK needs neither curl nor a shell in the image.

#include <chrono>
#include <string>

#include "ssegw/config/config.hpp"

namespace ssegw {

/// The outcome of one probe: exit code 0 when /readyz answered 200, else 1; `text` is the
/// one line to print (the status line, or why there was none).
struct health_check_result {
    int exit_code = 1;
    std::string text;
};

/// GET /readyz on server.admin_host:server.admin_port (a wildcard admin_host, 0.0.0.0 or ::,
/// is probed on the loopback address of its family), bounded by `timeout` in all.
health_check_result check_health(const server_config& server,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(2));

} // namespace ssegw
