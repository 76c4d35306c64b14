#pragma once
// One gateway process: the shards, the control loop on shard 0 (listener, router, broker, admin port,
// signals) and their wiring. Construct, then run() until SIGTERM/SIGINT.

#include <memory>

#include "ssegw/config/config.hpp"

namespace ssegw {

class server {
public:
    /// Binds the public and admin ports (throws std::exception with a clear message).
    explicit server(gateway_config cfg);
    ~server();

    /// Serves until SIGTERM/SIGINT, drains, and returns the process exit code.
    int run();

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace ssegw
