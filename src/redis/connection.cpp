#include "ssegw/redis/connection.hpp"

#include "ssegw/redis/backoff.hpp"
#include "ssegw/redis/tls_session.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <vector>

namespace ssegw {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using clock_type = std::chrono::steady_clock;

namespace {

constexpr std::size_t read_chunk = 16 * 1024;

bool is_pong(const reply& r) {
    return (r.type == reply::kind::status && r.str == "PONG") || r.is_push("pong");
}

/// The TLS settings of a rediss:// endpoint, loaded once per connection: trusted CAs (a file,
/// else the system store), an optional client certificate, TLS 1.2 or later.
std::shared_ptr<asio::ssl::context> make_tls_context(const redis_tls_options& tls) {
    auto ctx = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
    ctx->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    const auto load = [](const char* what, const std::string& path, auto&& f) {
        try {
            f();
        } catch (const boost::system::system_error& e) {
            throw std::runtime_error(std::string(what) + ": cannot load " + path + ": " + e.what());
        }
    };
    if (tls.ca_file.empty())
        ctx->set_default_verify_paths();
    else
        load("redis.tls.ca_file", tls.ca_file, [&] { ctx->load_verify_file(tls.ca_file); });
    if (!tls.cert_file.empty()) {
        load("redis.tls.cert_file", tls.cert_file,
             [&] { ctx->use_certificate_chain_file(tls.cert_file); });
        load("redis.tls.key_file", tls.key_file,
             [&] { ctx->use_private_key_file(tls.key_file, asio::ssl::context::pem); });
    }
    ctx->set_verify_mode(tls.verify ? asio::ssl::verify_peer : asio::ssl::verify_none);
    return ctx;
}

} // namespace

struct connection::impl : std::enable_shared_from_this<impl> {
    // waiting: between attempts; handshake: connected, AUTH/SELECT/owner's/PING sent, PONG pending.
    enum class phase { idle, waiting, resolving, connecting, handshake, up, stopped };

    redis_endpoint endpoint_;
    connection_options options_;
    std::weak_ptr<connection_owner> owner_;
    tcp::resolver resolver_;
    tcp::socket socket_;
    /// rediss://: the settings, and the TLS session of the current link (replaced when the
    /// next link connects). Reads and writes go to socket_ in ciphertext: read_buffer_ holds
    /// what a socket read returned, plain_buffer_ a record's decrypted bytes, tls_wire_ the
    /// records of the write in flight.
    std::shared_ptr<asio::ssl::context> tls_context_;
    std::unique_ptr<tls_session> tls_;
    std::vector<char> plain_buffer_;
    std::string tls_wire_;
    asio::steady_timer retry_timer_;
    asio::steady_timer tick_timer_;
    asio::steady_timer coalesce_timer_;
    backoff backoff_;
    resp_reader reader_;
    std::vector<char> read_buffer_;
    std::string out_pending_; // commands not yet handed to the socket
    std::string out_writing_; // the bytes of the write in flight
    bool writing_ = false;
    bool corked_ = false;     // while the handshake is assembled: it goes out as one write
    bool coalescing_ = false; // coalesce_timer_ will start the next write
    clock_type::time_point last_write_{};
    bool auth_pending_ = false;
    bool select_pending_ = false;
    bool role_pending_ = false;
    phase phase_ = phase::idle;
    // Bumped whenever a link is torn down: completions carrying an older value are stale.
    std::uint64_t generation_ = 0;
    // Last reply, or when the attempt started, or when the owner started awaiting a reply.
    clock_type::time_point last_progress_{};
    std::uint64_t reconnects_ = 0;
    std::uint64_t protocol_errors_ = 0;
    std::uint64_t tls_failures_ = 0;
    bool tls_handshake_pending_ = false;
    std::string last_error_;

    impl(asio::io_context& io, redis_endpoint endpoint, connection_options options,
         std::weak_ptr<connection_owner> owner)
        : endpoint_(std::move(endpoint)), options_(std::move(options)), owner_(std::move(owner)),
          resolver_(io), socket_(io), retry_timer_(io), tick_timer_(io), coalesce_timer_(io),
          backoff_(options_.reconnect_min, options_.reconnect_max), read_buffer_(read_chunk) {
        if (options_.ping_interval < std::chrono::seconds(1))
            options_.ping_interval = std::chrono::seconds(1);
        if (endpoint_.tls) {
            tls_context_ = make_tls_context(endpoint_.tls_options);
            plain_buffer_.resize(read_chunk);
        }
    }

    bool link_open() const { return phase_ == phase::handshake || phase_ == phase::up; }
    bool stale(std::uint64_t gen) const { return gen != generation_ || phase_ == phase::stopped; }

    // Runs a hook with the owner held alive for the call; false when the owner is gone.
    template <class F>
    bool with_owner(F&& f) {
        auto owner = owner_.lock();
        if (!owner) return false;
        f(*owner);
        return true;
    }

    // Body of every completion handler: nothing may unwind into Asio.
    template <class F>
    void contained(F&& f) noexcept {
        std::string reason;
        try {
            f();
            return;
        } catch (const std::exception& e) {
            reason = std::string("internal error: ") + e.what();
        } catch (...) {
            reason = "internal error";
        }
        try {
            fail(std::move(reason));
        } catch (...) {
            spdlog::error("{}: cannot recover from an internal error", options_.log_name);
        }
    }

    // ---- lifecycle ------------------------------------------------------------------------

    void start() {
        if (phase_ != phase::idle) return;
        if (endpoint_.host.empty()) {
            // Nothing to connect to until retarget() names an address (Sentinel mode, before a
            // sentinel has answered).
            phase_ = phase::waiting;
            last_error_ = "no address yet";
            return;
        }
        do_resolve();
    }

    void retarget(redis_endpoint endpoint, bool now) {
        if (phase_ == phase::stopped) return;
        const bool moved = endpoint.host != endpoint_.host || endpoint.port != endpoint_.port;
        endpoint_ = std::move(endpoint);
        if (!moved || phase_ == phase::idle) return;
        if (now) backoff_.reset();
        if (phase_ != phase::waiting) {
            fail("moved to " + address_of(endpoint_));
            if (phase_ != phase::waiting || !now) return; // the owner stopped us, or backoff
        }
        // Between attempts: the pending retry (for the old address) is replaced.
        ++generation_;
        retry_timer_.cancel();
        if (now) return do_resolve();
        retry_timer_.expires_after(backoff_.next());
        retry_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
            if (ec || self->stale(gen)) return;
            self->contained([&] { self->do_resolve(); });
        });
    }

    void stop() {
        if (phase_ == phase::stopped) return;
        phase_ = phase::stopped;
        ++generation_;
        close_link();
        retry_timer_.cancel();
    }

    void close_link() {
        if (tls_handshake_pending_) {
            ++tls_failures_;
            tls_handshake_pending_ = false;
        }
        error_code ignored;
        resolver_.cancel();
        socket_.shutdown(tcp::socket::shutdown_both, ignored);
        socket_.close(ignored);
        tick_timer_.cancel();
        coalesce_timer_.cancel();
        // Operations still queued on the closed socket no longer touch out_writing_.
        writing_ = false;
        corked_ = false;
        coalescing_ = false;
        out_pending_.clear();
        auth_pending_ = false;
        select_pending_ = false;
        role_pending_ = false;
        reader_.reset();
    }

    void fail(std::string reason) {
        if (phase_ == phase::idle || phase_ == phase::stopped || phase_ == phase::waiting) return;
        ++generation_;
        bool was_up = phase_ == phase::up;
        if (was_up || last_error_ != reason)
            spdlog::warn("{}: {} ({}); reconnecting", options_.log_name, reason,
                         address_of(endpoint_));
        last_error_ = reason;
        close_link();
        phase_ = phase::waiting;
        ++reconnects_;
        retry_timer_.expires_after(backoff_.next());
        retry_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
            if (ec || self->stale(gen)) return;
            self->contained([&] { self->do_resolve(); });
        });
        // Last: the owner may stop or drop us.
        try {
            with_owner([&](connection_owner& o) { o.on_down(reason, was_up); });
        } catch (const std::exception& e) {
            spdlog::error("{}: on_down threw: {}", options_.log_name, e.what());
        } catch (...) {
            spdlog::error("{}: on_down threw", options_.log_name);
        }
    }

    // ---- connect --------------------------------------------------------------------------

    void do_resolve() {
        phase_ = phase::resolving;
        last_progress_ = clock_type::now();
        arm_tick();
        // An IP address needs no look-up. Skipping Asio's resolver for it also keeps the
        // process at server.threads threads: the resolver starts a thread of its own for its
        // (blocking) getaddrinfo calls the first time it is used.
        error_code not_an_address;
        if (const auto address = asio::ip::make_address(endpoint_.host, not_an_address);
            !not_an_address)
            return on_resolve(generation_, {},
                              tcp::resolver::results_type::create(
                                  tcp::endpoint(address, endpoint_.port), endpoint_.host,
                                  std::to_string(endpoint_.port)));
        resolver_.async_resolve(
            endpoint_.host, std::to_string(endpoint_.port),
            [self = shared_from_this(), gen = generation_](error_code ec,
                                                           tcp::resolver::results_type results) {
                if (self->stale(gen)) return;
                self->contained([&] { self->on_resolve(gen, ec, std::move(results)); });
            });
    }

    void on_resolve(std::uint64_t gen, error_code ec, tcp::resolver::results_type results) {
        if (ec) return fail("resolve " + endpoint_.host + ": " + ec.message());
        phase_ = phase::connecting;
        asio::async_connect(socket_, results,
                            [self = shared_from_this(), gen](error_code ec, const tcp::endpoint&) {
                                if (self->stale(gen)) return;
                                self->contained([&] { self->on_connect(gen, ec); });
                            });
    }

    void on_connect(std::uint64_t gen, error_code ec) {
        if (ec) return fail("connect: " + ec.message());
        error_code ignored;
        socket_.set_option(tcp::no_delay(true), ignored);
        socket_.set_option(asio::socket_base::keep_alive(true), ignored);
        if (!tls_context_) return on_transport_ready(gen);
        start_tls(gen);
    }

    /// TLS handshake: SNI and the name the certificate must carry are tls.server_name, else the
    /// host of the URL. Failures are counted by close_link() while tls_handshake_pending_.
    void start_tls(std::uint64_t gen) {
        const auto& opts = endpoint_.tls_options;
        tls_session::options o;
        o.server_name = opts.server_name.empty() ? endpoint_.host : opts.server_name;
        o.verify = opts.verify;
        tls_handshake_pending_ = true;
        try {
            tls_ = std::make_unique<tls_session>(tls_context_->native_handle(), o);
        } catch (const std::exception& e) {
            return fail(e.what());
        }
        tls_handshake_step(gen);
    }

    void tls_handshake_step(std::uint64_t gen) {
        const auto st = tls_->handshake();
        if (st == tls_session::status::failed) return fail("TLS handshake: " + tls_->error());
        if (st == tls_session::status::closed)
            return fail("TLS handshake: connection closed by server");
        if (!tls_->has_output()) return tls_handshake_next(gen, st);
        tls_wire_.clear();
        tls_->take_output(tls_wire_);
        asio::async_write(socket_, asio::buffer(tls_wire_),
                          [self = shared_from_this(), gen, st](error_code ec, std::size_t) {
                              if (self->stale(gen)) return;
                              self->contained([&] {
                                  if (ec)
                                      return self->fail("TLS handshake: write: " + ec.message());
                                  self->tls_handshake_next(gen, st);
                              });
                          });
    }

    void tls_handshake_next(std::uint64_t gen, tls_session::status st) {
        if (st == tls_session::status::ok) {
            tls_handshake_pending_ = false;
            return on_transport_ready(gen);
        }
        socket_.async_read_some(asio::buffer(read_buffer_), [self = shared_from_this(),
                                                             gen](error_code ec, std::size_t n) {
            if (self->stale(gen)) return;
            self->contained([&] {
                if (ec)
                    return self->fail("TLS handshake: " +
                                      (ec == asio::error::eof
                                           ? std::string("connection closed by server")
                                           : ec.message()));
                self->tls_->feed(std::string_view(self->read_buffer_.data(), n));
                self->tls_handshake_step(gen);
            });
        });
    }

    void on_transport_ready(std::uint64_t gen) {
        phase_ = phase::handshake;
        last_progress_ = clock_type::now();
        corked_ = true;
        if (!endpoint_.password.empty()) {
            auth_pending_ = true;
            send(endpoint_.username.empty()
                     ? encode_command({"AUTH", endpoint_.password})
                     : encode_command({"AUTH", endpoint_.username, endpoint_.password}));
        }
        if (options_.select_db && endpoint_.db != 0) {
            select_pending_ = true;
            send(encode_command({"SELECT", std::to_string(endpoint_.db)}));
        }
        if (options_.require_primary) {
            role_pending_ = true;
            send(encode_command({"ROLE"}));
        }
        with_owner([](connection_owner& o) { o.on_open(); });
        if (stale(gen)) return;
        // The PONG is the barrier: replies come in order, so when it arrives everything sent
        // above was answered (or an error already failed the link).
        send(encode_command({"PING"}));
        corked_ = false;
        do_write();
        do_read();
    }

    // ---- write ----------------------------------------------------------------------------

    bool send(std::string bytes) {
        if (!link_open()) return false;
        if (out_pending_.empty())
            out_pending_ = std::move(bytes);
        else
            out_pending_ += bytes;
        schedule_write();
        return true;
    }

    void schedule_write() {
        if (writing_ || corked_ || coalescing_ || !has_unsent() || !link_open()) return;
        const auto due = last_write_ + options_.write_coalesce;
        if (clock_type::now() >= due) return do_write();
        coalescing_ = true;
        coalesce_timer_.expires_at(due);
        coalesce_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
            if (ec || self->stale(gen)) return;
            self->coalescing_ = false;
            self->contained([&] { self->do_write(); });
        });
    }

    // Commands not yet written, or TLS records (an alert, a key update) a read produced.
    bool has_unsent() const { return !out_pending_.empty() || (tls_ && tls_->has_output()); }

    void do_write() {
        if (writing_ || corked_ || coalescing_ || !has_unsent() || !link_open()) return;
        last_write_ = clock_type::now();
        out_writing_.swap(out_pending_);
        out_pending_.clear();
        writing_ = true;
        auto done = [self = shared_from_this(), gen = generation_](error_code ec, std::size_t) {
            if (self->stale(gen)) return;
            self->contained([&] { self->on_write(ec); });
        };
        if (!tls_) return asio::async_write(socket_, asio::buffer(out_writing_), std::move(done));
        if (tls_->write(out_writing_) != tls_session::status::ok) {
            writing_ = false;
            return fail("TLS write: " + tls_->error());
        }
        tls_wire_.clear();
        tls_->take_output(tls_wire_);
        asio::async_write(socket_, asio::buffer(tls_wire_), std::move(done));
    }

    void on_write(error_code ec) {
        if (ec) return fail("write: " + ec.message());
        writing_ = false;
        out_writing_.clear();
        do_write();
    }

    // ---- read -----------------------------------------------------------------------------

    void do_read() {
        socket_.async_read_some(
            asio::buffer(read_buffer_),
            [self = shared_from_this(), gen = generation_](error_code ec, std::size_t n) {
                if (self->stale(gen)) return;
                self->contained([&] { self->on_read(gen, ec, n); });
            });
    }

    void on_read(std::uint64_t gen, error_code ec, std::size_t n) {
        if (ec) {
            return fail(ec == asio::error::eof ? std::string("connection closed by server")
                                               : "read: " + ec.message());
        }
        bool carry_on = true;
        try {
            const std::string_view bytes(read_buffer_.data(), n);
            if (tls_) {
                carry_on = on_tls_bytes(gen, bytes);
            } else {
                reader_.feed(bytes);
                carry_on = drain_replies(gen);
            }
        } catch (const resp_error& e) {
            ++protocol_errors_;
            fail(e.what());
            carry_on = false;
        }
        // Whatever the replies of this read produced is passed on as one batch, even when the
        // link just failed. Over TLS too: every record of one socket read is decrypted before
        // the batch ends (Redis sends each message as a record of its own; a batch per record
        // cost TLS broadcasts +29 % CPU and a backlog).
        with_owner([](connection_owner& o) { o.on_burst_end(); });
        if (!carry_on) return;
        if (tls_ && tls_->has_output()) schedule_write();
        do_read();
    }

    /// Decrypts every whole record of one socket read. buffered() ends the loop without the
    /// SSL_read that would only report "no more" (the common case: one record per read).
    bool on_tls_bytes(std::uint64_t gen, std::string_view ciphertext) {
        tls_->feed(ciphertext);
        for (;;) {
            std::size_t got = 0;
            switch (tls_->read(plain_buffer_.data(), plain_buffer_.size(), got)) {
            case tls_session::status::ok:
                reader_.feed(std::string_view(plain_buffer_.data(), got));
                if (!drain_replies(gen)) return false;
                if (!tls_->buffered()) return true;
                break;
            case tls_session::status::want_input: return true;
            case tls_session::status::closed: fail("connection closed by server"); return false;
            case tls_session::status::failed: fail("read: " + tls_->error()); return false;
            }
        }
    }

    /// Hands every complete reply to on_reply(); false once the link was stopped or failed.
    bool drain_replies(std::uint64_t gen) {
        while (auto r = reader_.next()) {
            last_progress_ = clock_type::now();
            on_reply(std::move(*r));
            if (stale(gen)) return false; // the owner stopped us, or the reply failed the link
        }
        return true;
    }

    void on_reply(reply&& r) {
        bool is_error = r.type == reply::kind::error;
        // Our own handshake commands went first, so theirs are the first replies.
        if (auth_pending_) {
            auth_pending_ = false;
            if (is_error) fail("AUTH failed: " + r.str);
            return;
        }
        if (select_pending_) {
            select_pending_ = false;
            if (is_error) fail("SELECT failed: " + r.str);
            return;
        }
        if (role_pending_) {
            role_pending_ = false;
            if (is_error) return fail("ROLE failed: " + r.str);
            const bool primary = r.type == reply::kind::array && !r.elements.empty() &&
                                 r.elements[0].str == "master";
            if (!primary)
                fail("not the primary (ROLE says " +
                     (r.type == reply::kind::array && !r.elements.empty() ? r.elements[0].str
                                                                          : std::string("?")) +
                     ")");
            return;
        }
        if (phase_ == phase::handshake && is_pong(r)) {
            phase_ = phase::up;
            backoff_.reset();
            if (reconnects_ > 0)
                spdlog::info("{}: connected to {}", options_.log_name, address_of(endpoint_));
            with_owner([](connection_owner& o) { o.on_up(); });
            return;
        }
        with_owner([&](connection_owner& o) { o.on_reply(std::move(r)); });
    }

    // ---- liveness -------------------------------------------------------------------------

    void arm_tick() {
        tick_timer_.expires_after(options_.ping_interval);
        tick_timer_.async_wait([self = shared_from_this(), gen = generation_](error_code ec) {
            if (ec || self->stale(gen)) return;
            self->contained([&] { self->on_tick(gen); });
        });
    }

    void on_tick(std::uint64_t gen) {
        bool up = phase_ == phase::up;
        bool awaiting = true;
        if (up) with_owner([&](connection_owner& o) { awaiting = o.awaiting(); });
        // Also bounds resolve/connect/handshake: last_progress_ is set when the attempt starts.
        if (awaiting && clock_type::now() - last_progress_ >= 2 * options_.ping_interval)
            return fail(up ? options_.stall_reason
                        : tls_handshake_pending_
                            ? std::string("TLS handshake timed out (is it a TLS port?)")
                            : std::string("connect timed out"));
        if (up) {
            with_owner([](connection_owner& o) { o.on_tick(); });
            if (stale(gen)) return;
        }
        arm_tick();
    }
};

connection::connection(asio::io_context& io, redis_endpoint endpoint, connection_options options,
                       std::weak_ptr<connection_owner> owner)
    : impl_(std::make_shared<impl>(io, std::move(endpoint), std::move(options), std::move(owner))) {
}

connection::~connection() { impl_->stop(); }

void connection::start() { impl_->start(); }
void connection::retarget(redis_endpoint endpoint, bool now) {
    impl_->retarget(std::move(endpoint), now);
}
std::string connection::address() const {
    return impl_->endpoint_.host.empty() ? std::string() : address_of(impl_->endpoint_);
}
void connection::stop() { impl_->stop(); }
bool connection::send(std::string bytes) { return impl_->send(std::move(bytes)); }
void connection::fail(std::string reason) { impl_->fail(std::move(reason)); }
void connection::fail_protocol(const std::string& what) {
    if (!impl_->link_open()) return;
    ++impl_->protocol_errors_;
    impl_->fail("redis protocol error: " + what);
}
void connection::mark_progress() { impl_->last_progress_ = clock_type::now(); }
bool connection::open() const { return impl_->link_open(); }
bool connection::up() const { return impl_->phase_ == impl::phase::up; }
bool connection::stopped() const { return impl_->phase_ == impl::phase::stopped; }
std::size_t connection::own_in_flight() const {
    return std::size_t{impl_->auth_pending_} + std::size_t{impl_->select_pending_} +
           std::size_t{impl_->role_pending_} + std::size_t{impl_->phase_ == impl::phase::handshake};
}
std::uint64_t connection::reconnects() const { return impl_->reconnects_; }
std::uint64_t connection::protocol_errors() const { return impl_->protocol_errors_; }
std::uint64_t connection::tls_failures() const { return impl_->tls_failures_; }
const std::string& connection::last_error() const { return impl_->last_error_; }

} // namespace ssegw
