#include "ssegw/redis/connection.hpp"

#include "ssegw/redis/backoff.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
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
    /// rediss://: the settings, and the TLS layer over socket_ of the current link. A layer is
    /// replaced only when the next link connects: operations aborted by close_link() still
    /// refer to it until their completions have run.
    std::shared_ptr<asio::ssl::context> tls_context_;
    std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls_;
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
    std::size_t burst_bytes_ = 0; // read since the owner's last on_burst_end()
    std::string last_error_;

    impl(asio::io_context& io, redis_endpoint endpoint, connection_options options,
         std::weak_ptr<connection_owner> owner)
        : endpoint_(std::move(endpoint)), options_(std::move(options)), owner_(std::move(owner)),
          resolver_(io), socket_(io), retry_timer_(io), tick_timer_(io), coalesce_timer_(io),
          backoff_(options_.reconnect_min, options_.reconnect_max), read_buffer_(read_chunk) {
        if (options_.ping_interval < std::chrono::seconds(1))
            options_.ping_interval = std::chrono::seconds(1);
        if (endpoint_.tls) tls_context_ = make_tls_context(endpoint_.tls_options);
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
        // Replies of a TLS burst that was still being read on are passed on now.
        if (burst_bytes_ != 0) {
            burst_bytes_ = 0;
            with_owner([](connection_owner& o) { o.on_burst_end(); });
        }
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
    /// host of the URL (no SNI for an IP address, as RFC 6066 says).
    void start_tls(std::uint64_t gen) {
        const auto& opts = endpoint_.tls_options;
        const std::string& name = opts.server_name.empty() ? endpoint_.host : opts.server_name;
        tls_ = std::make_unique<asio::ssl::stream<tcp::socket&>>(socket_, *tls_context_);
        SSL* ssl = tls_->native_handle();
        error_code not_an_address;
        asio::ip::make_address(name, not_an_address);
        if (not_an_address && !SSL_set_tlsext_host_name(ssl, name.c_str()))
            return fail("TLS: cannot set the server name \"" + name + "\"");
        // OpenSSL's own name check (rather than a verify callback) reports "hostname mismatch"
        // or "IP address mismatch" as the verification result, which the log line then names.
        const bool name_set =
            not_an_address ? SSL_set1_host(ssl, name.c_str()) == 1
                           : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
        if (opts.verify && !name_set) return fail("TLS: cannot check the name \"" + name + "\"");
        tls_handshake_pending_ = true;
        tls_->async_handshake(asio::ssl::stream_base::client,
                              [self = shared_from_this(), gen](error_code ec) {
                                  if (self->stale(gen)) return;
                                  self->contained([&] { self->on_tls_handshake(gen, ec); });
                              });
    }

    void on_tls_handshake(std::uint64_t gen, error_code ec) {
        tls_handshake_pending_ = false;
        if (ec) {
            ++tls_failures_;
            return fail("TLS handshake: " + tls_error_text(ec));
        }
        on_transport_ready(gen);
    }

    /// OpenSSL's reason, with the certificate verification result when that is what failed.
    std::string tls_error_text(const error_code& ec) const {
        std::string text = ec.message();
        if (tls_) {
            const long verify = SSL_get_verify_result(tls_->native_handle());
            if (verify != X509_V_OK)
                text +=
                    std::string(" (certificate: ") + X509_verify_cert_error_string(verify) + ")";
        }
        return text;
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
        if (writing_ || corked_ || coalescing_ || out_pending_.empty() || !link_open()) return;
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

    void do_write() {
        if (writing_ || corked_ || coalescing_ || out_pending_.empty() || !link_open()) return;
        last_write_ = clock_type::now();
        out_writing_.swap(out_pending_);
        out_pending_.clear();
        writing_ = true;
        auto done = [self = shared_from_this(), gen = generation_](error_code ec, std::size_t) {
            if (self->stale(gen)) return;
            self->contained([&] { self->on_write(ec); });
        };
        if (tls_)
            asio::async_write(*tls_, asio::buffer(out_writing_), std::move(done));
        else
            asio::async_write(socket_, asio::buffer(out_writing_), std::move(done));
    }

    void on_write(error_code ec) {
        if (ec) return fail("write: " + ec.message());
        writing_ = false;
        out_writing_.clear();
        do_write();
    }

    // ---- read -----------------------------------------------------------------------------

    void do_read() {
        auto done = [self = shared_from_this(), gen = generation_](error_code ec, std::size_t n) {
            if (self->stale(gen)) return;
            self->contained([&] { self->on_read(gen, ec, n); });
        };
        if (tls_)
            tls_->async_read_some(asio::buffer(read_buffer_), std::move(done));
        else
            socket_.async_read_some(asio::buffer(read_buffer_), std::move(done));
    }

    void on_read(std::uint64_t gen, error_code ec, std::size_t n) {
        if (ec) {
            return fail(ec == asio::error::eof ? std::string("connection closed by server")
                                               : "read: " + ec.message());
        }
        bool carry_on = true;
        try {
            reader_.feed(std::string_view(read_buffer_.data(), n));
            while (auto r = reader_.next()) {
                last_progress_ = clock_type::now();
                on_reply(std::move(*r));
                if (stale(gen)) { // the owner stopped us, or the reply failed the link
                    carry_on = false;
                    break;
                }
            }
        } catch (const resp_error& e) {
            ++protocol_errors_;
            fail(e.what());
            carry_on = false;
        }
        // Whatever the replies of this read produced is passed on as one batch, even when the
        // link just failed. Over TLS a read returns one TLS record, and Redis sends each message
        // as a record of its own: while more is already here (decrypted in OpenSSL, or in the
        // kernel) and the burst is below what one plain read takes, read on first, so a burst
        // is what a plain read would have returned (bench/compare: per-event bursts cost TLS
        // broadcasts +29 % CPU and a backlog).
        burst_bytes_ += n;
        if (!(carry_on && tls_more_now())) {
            burst_bytes_ = 0;
            with_owner([](connection_owner& o) { o.on_burst_end(); });
        }
        if (carry_on) do_read();
    }

    bool tls_more_now() {
        if (!tls_ || burst_bytes_ >= read_chunk) return false;
        if (SSL_pending(tls_->native_handle()) > 0) return true;
        error_code ec;
        return socket_.available(ec) > 0 && !ec;
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
