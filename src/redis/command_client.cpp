#include "ssegw/redis/command_client.hpp"

#include "ssegw/redis/backoff.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <deque>

namespace ssegw {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t read_chunk = 16 * 1024;

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

struct command_client::impl : std::enable_shared_from_this<impl> {
    enum class phase { idle, waiting, resolving, connecting, handshake, up, stopped };
    // What a reply in the FIFO answers: the caller's command, or one of our own.
    enum class origin { user, auth, select, handshake_ping, ping };
    struct pending {
        origin from;
        completion done;
    };

    asio::io_context& io_;
    redis_endpoint endpoint_;
    std::chrono::seconds ping_interval_;
    tcp::resolver resolver_;
    tcp::socket socket_;
    asio::steady_timer retry_timer_;
    asio::steady_timer tick_timer_;
    backoff backoff_;
    resp_reader reader_;
    std::vector<char> read_buffer_;
    std::string out_pending_;
    std::string out_writing_;
    bool writing_ = false;
    std::deque<pending> in_flight_;
    phase phase_ = phase::idle;
    // Bumped whenever a link is torn down: completions carrying an older value are stale.
    std::uint64_t generation_ = 0;
    // Last reply, or when the FIFO last became non-empty, or when the attempt started.
    clock_type::time_point last_progress_{};
    std::uint64_t reconnects_ = 0;
    std::string last_error_;

    impl(asio::io_context& io, redis_endpoint endpoint, std::chrono::milliseconds reconnect_min,
         std::chrono::milliseconds reconnect_max, std::chrono::seconds ping_interval)
        : io_(io),
          endpoint_(std::move(endpoint)),
          ping_interval_(std::max(ping_interval, std::chrono::seconds(1))),
          resolver_(io),
          socket_(io),
          retry_timer_(io),
          tick_timer_(io),
          backoff_(reconnect_min, reconnect_max),
          read_buffer_(read_chunk) {}

    bool link_open() const { return phase_ == phase::handshake || phase_ == phase::up; }
    bool stale(std::uint64_t gen) const { return gen != generation_ || phase_ == phase::stopped; }

    void post_failure(completion done, std::string error) {
        if (!done) return;
        asio::post(io_, [done = std::move(done), error = std::move(error)]() mutable {
            complete_guarded(done, std::nullopt, std::move(error));
        });
    }

    // ---- lifecycle ------------------------------------------------------------------------

    void start() {
        if (phase_ != phase::idle) return;
        do_resolve();
    }

    void stop() {
        if (phase_ == phase::stopped) return;
        phase_ = phase::stopped;
        ++generation_;
        close_link("redis client stopped");
        retry_timer_.cancel();
    }

    // Tears the link down and fails everything that was waiting on it.
    void close_link(const std::string& error) {
        error_code ignored;
        resolver_.cancel();
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        tick_timer_.cancel();
        writing_ = false;
        out_pending_.clear();
        reader_.reset();
        auto orphans = std::move(in_flight_);
        in_flight_.clear();
        for (auto& p : orphans)
            if (p.from == origin::user) post_failure(std::move(p.done), error);
    }

    void fail(std::string reason) {
        if (phase_ == phase::stopped || phase_ == phase::waiting) return;
        ++generation_;
        if (phase_ == phase::up || last_error_ != reason)
            spdlog::warn("redis client: {} ({}); reconnecting", reason, redacted_url(endpoint_));
        last_error_ = reason;
        close_link("redis connection lost: " + reason);
        phase_ = phase::waiting;
        ++reconnects_;
        retry_timer_.expires_after(backoff_.next());
        retry_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
            if (ec || self->stale(gen)) return;
            self->do_resolve();
        });
    }

    // ---- connect --------------------------------------------------------------------------

    void do_resolve() {
        phase_ = phase::resolving;
        last_progress_ = clock_type::now();
        arm_tick();
        resolver_.async_resolve(
            endpoint_.host, std::to_string(endpoint_.port),
            [self = shared_from_this(), gen = generation_](error_code ec, tcp::resolver::results_type results) {
                self->on_resolve(gen, ec, std::move(results));
            });
    }

    void on_resolve(std::uint64_t gen, error_code ec, tcp::resolver::results_type results) {
        if (stale(gen)) return;
        if (ec) return fail("resolve " + endpoint_.host + ": " + ec.message());
        phase_ = phase::connecting;
        asio::async_connect(socket_, results,
                            [self = shared_from_this(), gen](error_code ec, const tcp::endpoint&) {
                                self->on_connect(gen, ec);
                            });
    }

    void on_connect(std::uint64_t gen, error_code ec) {
        if (stale(gen)) return;
        if (ec) return fail("connect: " + ec.message());
        error_code ignored;
        socket_.set_option(tcp::no_delay(true), ignored);
        socket_.set_option(asio::socket_base::keep_alive(true), ignored);
        phase_ = phase::handshake;
        last_progress_ = clock_type::now();
        if (!endpoint_.password.empty()) {
            enqueue(endpoint_.username.empty() ? encode_command({"AUTH", endpoint_.password})
                                               : encode_command({"AUTH", endpoint_.username, endpoint_.password}),
                    {origin::auth, nullptr});
        }
        if (endpoint_.db != 0) {
            enqueue(encode_command({"SELECT", std::to_string(endpoint_.db)}), {origin::select, nullptr});
        }
        // Replies are ordered: the PONG means the whole handshake went through.
        enqueue(encode_command({"PING"}), {origin::handshake_ping, nullptr});
        do_read();
    }

    // ---- commands -------------------------------------------------------------------------

    void execute(std::vector<std::string> args, completion done) {
        if (phase_ != phase::up) return post_failure(std::move(done), "redis unavailable");
        if (in_flight_.size() >= max_in_flight) return post_failure(std::move(done), "redis busy");
        if (args.empty()) return post_failure(std::move(done), "empty command");
        std::vector<std::string_view> views(args.begin(), args.end());
        std::string bytes;
        try {
            bytes = encode_command(views);
        } catch (const std::exception& e) {
            return post_failure(std::move(done), std::string("cannot encode command: ") + e.what());
        }
        enqueue(std::move(bytes), {origin::user, std::move(done)});
    }

    void enqueue(std::string bytes, pending p) {
        if (in_flight_.empty()) last_progress_ = clock_type::now();
        in_flight_.push_back(std::move(p));
        out_pending_ += bytes;
        do_write();
    }

    void do_write() {
        if (writing_ || out_pending_.empty() || !link_open()) return;
        out_writing_.swap(out_pending_);
        out_pending_.clear();
        writing_ = true;
        asio::async_write(socket_, asio::buffer(out_writing_),
                          [self = shared_from_this(), gen = generation_](error_code ec, std::size_t) {
                              self->on_write(gen, ec);
                          });
    }

    void on_write(std::uint64_t gen, error_code ec) {
        if (stale(gen)) return;
        if (ec) return fail("write: " + ec.message());
        writing_ = false;
        out_writing_.clear();
        do_write();
    }

    // ---- replies --------------------------------------------------------------------------

    void do_read() {
        socket_.async_read_some(asio::buffer(read_buffer_),
                                [self = shared_from_this(), gen = generation_](error_code ec, std::size_t n) {
                                    self->on_read(gen, ec, n);
                                });
    }

    void on_read(std::uint64_t gen, error_code ec, std::size_t n) {
        if (stale(gen)) return;
        if (ec) {
            return fail(ec == asio::error::eof ? std::string("connection closed by server")
                                               : "read: " + ec.message());
        }
        try {
            reader_.feed(std::string_view(read_buffer_.data(), n));
            while (auto r = reader_.next()) {
                last_progress_ = clock_type::now();
                on_reply(std::move(*r));
                if (stale(gen)) return;  // a completion stopped us, or the reply failed the link
            }
        } catch (const resp_error& e) {
            return fail(e.what());
        } catch (const std::exception& e) {
            return fail(std::string("internal error: ") + e.what());
        }
        do_read();
    }

    void on_reply(reply r) {
        if (in_flight_.empty()) return fail("redis protocol error: unsolicited reply");
        pending p = std::move(in_flight_.front());
        in_flight_.pop_front();
        bool is_error = r.type == reply::kind::error;
        switch (p.from) {
        case origin::user: {
            std::string error = is_error ? r.str : std::string();
            if (is_error && error.empty()) error = "redis error";
            complete_guarded(p.done, std::move(r), std::move(error));
            return;
        }
        case origin::auth:
            if (is_error) fail("AUTH failed: " + r.str);
            return;
        case origin::select:
            if (is_error) fail("SELECT failed: " + r.str);
            return;
        case origin::handshake_ping:
            if (is_error) return fail("handshake failed: " + r.str);
            phase_ = phase::up;
            backoff_.reset();
            if (reconnects_ > 0) spdlog::info("redis client: connected to {}", redacted_url(endpoint_));
            return;
        case origin::ping:
            return;
        }
    }

    // ---- liveness -------------------------------------------------------------------------

    void arm_tick() {
        tick_timer_.expires_after(ping_interval_);
        tick_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
            if (ec || self->stale(gen)) return;
            self->on_tick();
        });
    }

    void on_tick() {
        bool waiting = phase_ != phase::up || !in_flight_.empty();
        if (waiting && clock_type::now() - last_progress_ >= 2 * ping_interval_)
            return fail(phase_ == phase::up ? "no reply within " + std::to_string(2 * ping_interval_.count()) + " s"
                                            : "connect timed out");
        // An idle link is probed so a dead one is noticed before the next real command.
        if (phase_ == phase::up && in_flight_.empty()) enqueue(encode_command({"PING"}), {origin::ping, nullptr});
        arm_tick();
    }
};

command_client::command_client(asio::io_context& io, redis_endpoint endpoint,
                               std::chrono::milliseconds reconnect_min,
                               std::chrono::milliseconds reconnect_max, std::chrono::seconds ping_interval)
    : impl_(std::make_shared<impl>(io, std::move(endpoint), reconnect_min, reconnect_max, ping_interval)) {}

command_client::~command_client() { impl_->stop(); }

void command_client::start() { impl_->start(); }
void command_client::stop() { impl_->stop(); }
void command_client::execute(std::vector<std::string> args, completion done) {
    impl_->execute(std::move(args), std::move(done));
}
bool command_client::connected() const { return impl_->phase_ == impl::phase::up; }
std::size_t command_client::in_flight() const { return impl_->in_flight_.size(); }
std::uint64_t command_client::reconnects() const { return impl_->reconnects_; }
std::string command_client::last_error() const { return impl_->last_error_; }

} // namespace ssegw
