#pragma once
// Sentinel mode: where the primary is. The monitor asks one sentinel at a time for the named
// primary (SENTINEL get-master-addr-by-name) once a second, listens on a second link to the same
// sentinel for its +switch-master announcement so a failover is followed at once, and moves to the
// next sentinel when the current one stops answering. Whoever owns the data links moves them when
// told (and checks each new address with ROLE: a sentinel may name a node that is not the primary
// yet, or any more).

#include "ssegw/core/redis_url.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ssegw {

struct sentinel_monitor_options {
    /// The sentinels, each with its own credentials and TLS settings; asked in this order.
    std::vector<redis_endpoint> sentinels;
    std::string master_name;
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    /// How often the current sentinel is asked; three periods without an answer move the
    /// monitor to the next sentinel.
    std::chrono::milliseconds poll_interval{1000};
};

/// Single-threaded: construct, call and destroy it on the thread running its io_context.
class sentinel_monitor {
public:
    /// A sentinel named a primary other than the last one (the first answer included). Runs on
    /// the io_context thread, never after stop().
    using primary_handler = std::function<void(const std::string& host, std::uint16_t port)>;

    /// Does no I/O until start(). Throws std::invalid_argument without sentinels or a name.
    sentinel_monitor(boost::asio::io_context& io, sentinel_monitor_options options,
                     primary_handler on_primary);
    ~sentinel_monitor();
    sentinel_monitor(const sentinel_monitor&) = delete;
    sentinel_monitor& operator=(const sentinel_monitor&) = delete;

    void start();
    /// Closes both links; the handler is not called after it returns.
    void stop();
    /// Asks now rather than at the next period: a data link lost the primary, or found a
    /// replica where the primary was said to be.
    void refresh();

    /// host:port of the sentinel being asked.
    std::string sentinel_address() const;
    /// host:port of the primary last named ("" before the first answer).
    std::string primary_address() const;
    /// Changes of the named primary after the first answer: the failovers this process saw.
    std::uint64_t failovers() const;
    /// Moves to the next sentinel because the current one stopped answering.
    std::uint64_t sentinel_changes() const;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

} // namespace ssegw
