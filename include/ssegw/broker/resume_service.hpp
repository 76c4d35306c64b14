#pragma once
// Reads history at the two moments it is needed, on the control loop:
//  - a stream starts: once the live feed covers its channels, read what they hold after the
//    client's Last-Event-ID (or just where history stands, for a new client), so the session can
//    write the missed events and then go live with no gap and no duplicate;
//  - the live feed comes back after Redis was away: read what the process's channels got
//    meanwhile and route it (the router holds live events back until then).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "ssegw/core/history.hpp"
#include "ssegw/core/history_source.hpp"

namespace ssegw {

class broker;
class event_sink;

class resume_service final : public history_source {
public:
    /// Follows b's link (broker::on_link) to catch `sink` up after the feed was lost.
    resume_service(boost::asio::io_context& control, broker& b, event_sink& sink);

    /// History for a starting stream; `deliver` runs on the control loop. A read that fails
    /// (Redis went away) is tried again once the feed is back, while `alive()` says the stream
    /// still exists, up to max_attempts; then the failure is delivered.
    void request(std::vector<std::string> channels, std::optional<stream_position> from,
                 deliver_fn deliver, std::function<bool()> alive) override;

    static constexpr unsigned max_attempts = 10;

    std::uint64_t retries() const noexcept { return retries_; }

    /// The broker's live feed was lost (false) or is back (true).
    void on_link(bool up);

    void stop();

private:
    struct pending_request;
    void attempt(std::shared_ptr<pending_request> req);
    void read_chunked(std::vector<std::string> channels, std::optional<stream_position> from,
                      std::function<void(history_read)> done);
    void catch_up();
    void finish_catch_up(history_read r);
    void retry_catch_up_later();

    broker& broker_;
    event_sink& sink_;
    boost::asio::io_context& control_;
    boost::asio::steady_timer retry_timer_;
    std::uint64_t retries_ = 0;
    bool link_up_ = false;
    bool catch_up_running_ = false;
    bool rerun_ = false;
    bool stopped_ = false;
};

} // namespace ssegw
