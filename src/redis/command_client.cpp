#include "ssegw/redis/command_client.hpp"

#include "ssegw/redis/connection.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <optional>

namespace ssegw {

namespace asio = boost::asio;

namespace {

void complete_guarded(const command_client::completion& done, std::optional<reply> result,
                      std::string error) noexcept {
    if (!done) return;
    try {
        done(std::move(result), std::move(error));
    } catch (const std::exception& e) {
        spdlog::error("redis command completion threw: {}", e.what());
    } catch (...) {
        spdlog::error("redis command completion threw");
    }
}

} // namespace

struct command_client::impl : connection_owner, std::enable_shared_from_this<impl> {
    struct pending {
        bool probe; // our own idle PING, not the caller's command
        completion done;
    };

    asio::io_context& io_;
    std::optional<connection> link_; // set right after construction: it needs our weak_ptr
    std::deque<pending> in_flight_;

    explicit impl(asio::io_context& io) : io_(io) {}

    static connection_options link_options(const command_client_options& o) {
        connection_options c;
        c.reconnect_min = o.reconnect_min;
        c.reconnect_max = o.reconnect_max;
        c.ping_interval = std::max(o.ping_interval, std::chrono::seconds(1));
        c.require_primary = o.require_primary;
        c.log_name = o.log_name;
        c.stall_reason = "no reply within " + std::to_string(2 * c.ping_interval.count()) + " s";
        return c;
    }

    void post_failure(completion done, std::string error) {
        if (!done) return;
        asio::post(io_, [done = std::move(done), error = std::move(error)]() mutable {
            complete_guarded(done, std::nullopt, std::move(error));
        });
    }

    // Fails everything that was waiting on the link.
    void fail_all(const std::string& error) {
        auto orphans = std::move(in_flight_);
        in_flight_.clear();
        for (auto& p : orphans)
            if (!p.probe) post_failure(std::move(p.done), error);
    }

    void stop() {
        if (link_->stopped()) return;
        link_->stop();
        fail_all("redis client stopped");
    }

    void execute(std::vector<std::string> args, completion done) {
        if (!link_->up()) return post_failure(std::move(done), "redis unavailable");
        if (in_flight_.size() >= max_in_flight) return post_failure(std::move(done), "redis busy");
        if (args.empty()) return post_failure(std::move(done), "empty command");
        std::vector<std::string_view> views(args.begin(), args.end());
        std::string bytes;
        try {
            bytes = encode_command(views);
        } catch (const std::exception& e) {
            return post_failure(std::move(done), std::string("cannot encode command: ") + e.what());
        }
        enqueue(std::move(bytes), {false, std::move(done)});
    }

    void enqueue(std::string bytes, pending p) {
        if (in_flight_.empty()) link_->mark_progress();
        in_flight_.push_back(std::move(p));
        link_->send(std::move(bytes));
    }

    // ---- connection_owner -----------------------------------------------------------------

    void on_reply(reply&& r) override {
        // Before up, the connection's own handshake replies are all there should be.
        if (!link_->up() && r.type == reply::kind::error)
            return link_->fail("handshake failed: " + r.str);
        if (!link_->up() || in_flight_.empty()) return link_->fail_protocol("unsolicited reply");
        pending p = std::move(in_flight_.front());
        in_flight_.pop_front();
        if (p.probe) return;
        std::string error = r.type == reply::kind::error ? r.str : std::string();
        if (r.type == reply::kind::error && error.empty()) error = "redis error";
        complete_guarded(p.done, std::move(r), std::move(error));
    }

    // Only a link with commands outstanding can be silent for too long.
    bool awaiting() const override { return !in_flight_.empty(); }

    // An idle link is probed so a dead one is noticed before the next real command.
    void on_tick() override {
        if (in_flight_.empty()) enqueue(encode_command({"PING"}), {true, nullptr});
    }

    void on_down(const std::string& reason, bool) override {
        fail_all("redis connection lost: " + reason);
    }
};

command_client::command_client(asio::io_context& io, redis_endpoint endpoint,
                               std::chrono::milliseconds reconnect_min,
                               std::chrono::milliseconds reconnect_max,
                               std::chrono::seconds ping_interval)
    : command_client(io, std::move(endpoint),
                     command_client_options{reconnect_min, reconnect_max, ping_interval}) {}

command_client::command_client(asio::io_context& io, redis_endpoint endpoint,
                               command_client_options options)
    : impl_(std::make_shared<impl>(io)) {
    impl_->link_.emplace(io, std::move(endpoint), impl::link_options(options), impl_);
}

command_client::~command_client() { impl_->stop(); }

void command_client::start() { impl_->link_->start(); }
void command_client::retarget(redis_endpoint endpoint, bool now) {
    impl_->link_->retarget(std::move(endpoint), now);
}
std::string command_client::address() const { return impl_->link_->address(); }
void command_client::stop() { impl_->stop(); }
void command_client::execute(std::vector<std::string> args, completion done) {
    impl_->execute(std::move(args), std::move(done));
}
bool command_client::connected() const { return impl_->link_->up(); }
std::size_t command_client::in_flight() const {
    return impl_->in_flight_.size() + impl_->link_->own_in_flight();
}
std::uint64_t command_client::reconnects() const { return impl_->link_->reconnects(); }
std::uint64_t command_client::tls_failures() const { return impl_->link_->tls_failures(); }
std::string command_client::last_error() const { return impl_->link_->last_error(); }

} // namespace ssegw
