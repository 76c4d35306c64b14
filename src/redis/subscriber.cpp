#include "ssegw/redis/subscriber.hpp"

#include "ssegw/redis/backoff.hpp"
#include "ssegw/redis/resp.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <unordered_set>
#include <vector>

namespace ssegw {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

/// Names per SUBSCRIBE/UNSUBSCRIBE command: keeps single commands (and Redis' work per command)
/// small while still batching.
constexpr std::size_t names_per_command = 512;
constexpr std::size_t read_chunk = 16 * 1024;

// Desired vs. server state of one kind of subscription (channels or patterns).
//  desired:   what the owner wants, survives reconnects
//  expected:  what the server will hold once every command sent on this link is processed
//  confirmed: what the server has confirmed on this link
//  dirty:     names whose desire changed since the last flush
struct name_set {
    std::string_view subscribe_cmd;
    std::string_view unsubscribe_cmd;
    std::unordered_set<std::string> desired;
    std::unordered_set<std::string> expected;
    std::unordered_set<std::string> confirmed;
    std::unordered_set<std::string> dirty;

    void on_link_reset() {
        expected.clear();
        confirmed.clear();
        dirty.clear();
    }
};

void append_commands(std::string& out, std::string_view command,
                     const std::vector<std::string_view>& names) {
    std::vector<std::string_view> args;
    for (std::size_t i = 0; i < names.size(); i += names_per_command) {
        std::size_t end = std::min(names.size(), i + names_per_command);
        args.clear();
        args.push_back(command);
        args.insert(args.end(), names.begin() + static_cast<std::ptrdiff_t>(i),
                    names.begin() + static_cast<std::ptrdiff_t>(end));
        out += encode_command(args);
    }
}

// User callbacks must not unwind into Asio: log and carry on.
template <class F, class... Args>
void invoke_guarded(const F& f, const char* what, Args&&... args) noexcept {
    if (!f) return;
    try {
        f(std::forward<Args>(args)...);
    } catch (const std::exception& e) {
        spdlog::error("redis subscriber: {} handler threw: {}", what, e.what());
    } catch (...) {
        spdlog::error("redis subscriber: {} handler threw", what);
    }
}

} // namespace

struct subscriber::impl : std::enable_shared_from_this<impl> {
    // waiting: between attempts; handshake: connected, AUTH/SUBSCRIBE/PING sent, PONG pending.
    enum class phase { idle, waiting, resolving, connecting, handshake, up, stopped };

    asio::io_context& io_;
    redis_endpoint endpoint_;
    subscriber_options options_;
    subscriber_handlers handlers_;
    tcp::resolver resolver_;
    tcp::socket socket_;
    asio::steady_timer retry_timer_;
    asio::steady_timer tick_timer_;
    backoff backoff_;
    resp_reader reader_;
    std::vector<char> read_buffer_;
    std::string out_pending_;   // commands not yet handed to the socket
    std::string out_writing_;   // the bytes of the write in flight
    bool writing_ = false;
    bool auth_pending_ = false;
    bool flush_posted_ = false;
    bool reported_up_ = false;
    phase phase_ = phase::idle;
    // Bumped whenever a link is torn down: completions carrying an older value are stale.
    std::uint64_t generation_ = 0;
    clock_type::time_point last_rx_{};
    name_set channels_{"SUBSCRIBE", "UNSUBSCRIBE", {}, {}, {}, {}};
    name_set patterns_{"PSUBSCRIBE", "PUNSUBSCRIBE", {}, {}, {}, {}};
    std::uint64_t reconnects_ = 0;
    std::uint64_t protocol_errors_ = 0;
    std::string last_error_;

    impl(asio::io_context& io, redis_endpoint endpoint, subscriber_options options,
         subscriber_handlers handlers)
        : io_(io),
          endpoint_(std::move(endpoint)),
          options_(options),
          handlers_(std::move(handlers)),
          resolver_(io),
          socket_(io),
          retry_timer_(io),
          tick_timer_(io),
          backoff_(options.reconnect_min, options.reconnect_max),
          read_buffer_(read_chunk) {
        if (options_.ping_interval < std::chrono::seconds(1)) options_.ping_interval = std::chrono::seconds(1);
    }

    bool link_open() const { return phase_ == phase::handshake || phase_ == phase::up; }
    bool stale(std::uint64_t gen) const { return gen != generation_ || phase_ == phase::stopped; }

    // ---- lifecycle ------------------------------------------------------------------------

    void start() {
        if (phase_ != phase::idle) return;
        do_resolve();
    }

    void stop() {
        if (phase_ == phase::stopped) return;
        phase_ = phase::stopped;
        ++generation_;
        reported_up_ = false;
        close_link();
        retry_timer_.cancel();
    }

    void close_link() {
        error_code ignored;
        resolver_.cancel();
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        tick_timer_.cancel();
        // Buffers of operations still queued on the closed socket are no longer touched by them.
        writing_ = false;
        out_pending_.clear();
        auth_pending_ = false;
        channels_.on_link_reset();
        patterns_.on_link_reset();
        reader_.reset();
    }

    void fail(std::string reason) {
        if (phase_ == phase::stopped || phase_ == phase::waiting) return;
        ++generation_;
        bool was_up = reported_up_;
        reported_up_ = false;
        if (was_up || last_error_ != reason)
            spdlog::warn("redis subscriber: {} ({}); reconnecting", reason, redacted_url(endpoint_));
        last_error_ = std::move(reason);
        close_link();
        phase_ = phase::waiting;
        auto delay = backoff_.next();
        ++reconnects_;
        retry_timer_.expires_after(delay);
        retry_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
            if (ec || self->stale(gen)) return;
            self->do_resolve();
        });
        // Last: the handler may call stop() or drop the subscriber.
        if (was_up) invoke_guarded(handlers_.on_state, "on_state", false);
    }

    // ---- connect --------------------------------------------------------------------------

    void do_resolve() {
        phase_ = phase::resolving;
        last_rx_ = clock_type::now();
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
        last_rx_ = clock_type::now();

        std::string out;
        if (!endpoint_.password.empty()) {
            auth_pending_ = true;
            out += endpoint_.username.empty()
                       ? encode_command({"AUTH", endpoint_.password})
                       : encode_command({"AUTH", endpoint_.username, endpoint_.password});
        }
        for (name_set* set : {&channels_, &patterns_}) {
            std::vector<std::string_view> names(set->desired.begin(), set->desired.end());
            append_commands(out, set->subscribe_cmd, names);
            set->expected = set->desired;
            set->dirty.clear();
        }
        // The PONG is the barrier: replies come in order, so when it arrives every subscription
        // sent above is confirmed (or an error already failed the link).
        out += encode_command({"PING"});
        send(std::move(out));
        do_read();
    }

    // ---- write ----------------------------------------------------------------------------

    void send(std::string bytes) {
        if (out_pending_.empty())
            out_pending_ = std::move(bytes);
        else
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

    // ---- read -----------------------------------------------------------------------------

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
                last_rx_ = clock_type::now();
                on_reply(*r);
                if (stale(gen)) return;  // a handler stopped us, or the reply failed the link
            }
        } catch (const resp_error& e) {
            ++protocol_errors_;
            return fail(e.what());
        } catch (const std::exception& e) {
            return fail(std::string("internal error: ") + e.what());
        }
        do_read();
    }

    void protocol_error(std::string what) {
        ++protocol_errors_;
        fail("redis protocol error: " + what);
    }

    void on_reply(const reply& r) {
        using kind = reply::kind;
        if (r.type == kind::error) {
            bool auth = auth_pending_;
            auth_pending_ = false;
            return fail((auth ? "AUTH failed: " : "redis error: ") + r.str);
        }
        if (auth_pending_) {
            auth_pending_ = false;  // the first reply on the link answers AUTH
            if (r.type == kind::status) return;
        }
        if (r.type == kind::status) {
            if (r.str == "PONG") on_pong();
            return;
        }
        if (r.type != kind::array || r.elements.empty() || r.elements[0].type != kind::string) return;
        const std::string& what = r.elements[0].str;
        const auto& el = r.elements;
        auto is_str = [&](std::size_t i) { return el[i].type == kind::string; };
        if (what == "message") {
            if (el.size() != 3 || !is_str(1) || !is_str(2)) return protocol_error("malformed message");
            invoke_guarded(handlers_.on_message, "on_message", std::string_view(el[1].str),
                           std::string_view(el[2].str));
        } else if (what == "pmessage") {
            if (el.size() != 4 || !is_str(2) || !is_str(3)) return protocol_error("malformed pmessage");
            invoke_guarded(handlers_.on_message, "on_message", std::string_view(el[2].str),
                           std::string_view(el[3].str));
        } else if (what == "subscribe" || what == "unsubscribe" || what == "psubscribe" ||
                   what == "punsubscribe") {
            if (el.size() != 3 || !is_str(1)) return protocol_error("malformed " + what);
            bool pattern = what[0] == 'p';
            bool added = what == "subscribe" || what == "psubscribe";
            on_confirm(pattern ? patterns_ : channels_, el[1].str, added);
            if (added && !pattern) invoke_guarded(handlers_.on_subscribed, "on_subscribed", std::string_view(el[1].str));
        } else if (what == "pong") {
            on_pong();
        }
        // Anything else (e.g. future push kinds) is ignored on purpose.
    }

    void on_confirm(name_set& set, const std::string& name, bool added) {
        if (added)
            set.confirmed.insert(name);
        else
            set.confirmed.erase(name);
        // A name dropped while its SUBSCRIBE was in flight could not be unsubscribed then (only
        // confirmed names are); now it can.
        if (set.desired.contains(name) != set.expected.contains(name) || (added && !set.desired.contains(name))) {
            set.dirty.insert(name);
            schedule_flush();
        }
    }

    void on_pong() {
        if (phase_ != phase::handshake) return;
        phase_ = phase::up;
        backoff_.reset();
        reported_up_ = true;
        if (reconnects_ > 0) spdlog::info("redis subscriber: connected to {}", redacted_url(endpoint_));
        invoke_guarded(handlers_.on_state, "on_state", true);
    }

    // ---- liveness -------------------------------------------------------------------------

    void arm_tick() {
        tick_timer_.expires_after(options_.ping_interval);
        tick_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
            if (ec || self->stale(gen)) return;
            self->on_tick();
        });
    }

    void on_tick() {
        // Also bounds resolve/connect/handshake: last_rx_ is set when the attempt starts.
        if (clock_type::now() - last_rx_ >= 2 * options_.ping_interval) {
            return fail(phase_ == phase::up ? "no reply to PING" : "connect timed out");
        }
        if (phase_ == phase::up) send(encode_command({"PING"}));
        arm_tick();
    }

    // ---- desired-set changes --------------------------------------------------------------

    void change(name_set& set, const std::string& name, bool want) {
        if (phase_ == phase::stopped) return;
        if (want)
            set.desired.insert(name);
        else
            set.desired.erase(name);
        // While no link is open the next connect sends the whole desired set anyway.
        if (!link_open()) return;
        set.dirty.insert(name);
        schedule_flush();
    }

    void schedule_flush() {
        if (flush_posted_) return;
        flush_posted_ = true;
        asio::post(io_, [self = shared_from_this()] {
            self->flush_posted_ = false;
            try {
                self->flush();
            } catch (const std::exception& e) {
                self->fail(std::string("internal error: ") + e.what());
            }
        });
    }

    void flush() {
        if (!link_open()) {
            channels_.dirty.clear();
            patterns_.dirty.clear();
            return;
        }
        std::string out;
        for (name_set* set : {&channels_, &patterns_}) {
            std::vector<std::string_view> add, remove;
            for (const auto& name : set->dirty) {
                bool want = set->desired.contains(name);
                bool will_have = set->expected.contains(name);
                if (want && !will_have) {
                    add.push_back(name);
                } else if (!want && will_have && set->confirmed.contains(name)) {
                    remove.push_back(name);
                }
                // !want && will_have && !confirmed: SUBSCRIBE still in flight; its confirmation
                // marks the name dirty again.
            }
            for (auto n : add) set->expected.insert(std::string(n));
            for (auto n : remove) set->expected.erase(std::string(n));
            append_commands(out, set->subscribe_cmd, add);
            append_commands(out, set->unsubscribe_cmd, remove);
            set->dirty.clear();  // the views above point into `dirty`: clear after encoding
        }
        if (!out.empty()) send(std::move(out));
    }
};

subscriber::subscriber(asio::io_context& io, redis_endpoint endpoint, subscriber_options options,
                       subscriber_handlers handlers)
    : impl_(std::make_shared<impl>(io, std::move(endpoint), options, std::move(handlers))) {}

subscriber::~subscriber() { impl_->stop(); }

void subscriber::start() { impl_->start(); }
void subscriber::stop() { impl_->stop(); }
void subscriber::subscribe(const std::string& channel) { impl_->change(impl_->channels_, channel, true); }
void subscriber::unsubscribe(const std::string& channel) { impl_->change(impl_->channels_, channel, false); }
void subscriber::psubscribe(const std::string& pattern) { impl_->change(impl_->patterns_, pattern, true); }
void subscriber::punsubscribe(const std::string& pattern) { impl_->change(impl_->patterns_, pattern, false); }
bool subscriber::connected() const { return impl_->reported_up_; }
std::size_t subscriber::channel_count() const { return impl_->channels_.confirmed.size(); }
std::size_t subscriber::desired_count() const { return impl_->channels_.desired.size(); }
std::uint64_t subscriber::reconnects() const { return impl_->reconnects_; }
std::uint64_t subscriber::protocol_errors() const { return impl_->protocol_errors_; }
std::string subscriber::last_error() const { return impl_->last_error_; }

} // namespace ssegw
