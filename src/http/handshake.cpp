#include "ssegw/http/handshake.hpp"

#include "ssegw/core/cluster_cursor.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <optional>
#include <string>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include "ssegw/auth/authenticator.hpp"
#include "ssegw/core/channel.hpp"
#include "ssegw/core/control_message.hpp"
#include "ssegw/core/query_string.hpp"
#include "ssegw/http/subscribe_request.hpp"
#include "ssegw/shard/session.hpp"
#include "ssegw/shard/shard.hpp"
#include "ssegw/shard/shard_set.hpp"

namespace ssegw {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

class handshake : public std::enable_shared_from_this<handshake> {
public:
    handshake(shard& owner, const authenticator& auth, shard_socket socket)
        : shard_(owner), shards_(owner.set()), cfg_(owner.config()), auth_(auth),
          stream_(std::move(socket)) {}

    void start() {
        parser_.emplace();
        parser_->header_limit(cfg_.server.max_header_bytes);
        // Only the head is read; a body (on a wrong method) is drained by linger(), so its
        // declared length must not fail the header read.
        parser_->body_limit(boost::none);
        stream_.expires_after(std::chrono::milliseconds(cfg_.server.handshake_timeout_ms));
        http::async_read_header(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

private:
    /// The request head is in (or the read failed): each step below either answers the client
    /// and returns nothing, or hands what it established to the next one.
    void on_read(beast::error_code ec) {
        if (ec) return on_read_failed(ec);
        auto sub = route();
        if (!sub) return;
        auto user = authorize(*sub);
        if (!user || !admit(*user)) return;
        open_stream(std::move(*user), *sub);
    }

    void on_read_failed(beast::error_code ec) {
        if (ec == http::error::header_limit) {
            // One limit covers the whole head while parsing; the request line was too long
            // (414) when the parser never got past it, else the headers were (431).
            if (parser_->get().target().empty())
                return reject(http::status::uri_too_long, "request target too long",
                              reject_reason::target_too_long);
            return reject(http::status::request_header_fields_too_large,
                          "request headers too large", reject_reason::headers_too_large);
        }
        if (ec == beast::error::timeout) return fail(close_reason::handshake_timeout);
        const bool client_left =
            ec == http::error::end_of_stream || ec == http::error::partial_message ||
            ec.category() != http::make_error_code(http::error::bad_method).category();
        // The client left (or reset) before its request was complete: nobody to answer.
        if (client_left) return fail(close_reason::handshake_failed);
        // Bytes that are not an HTTP request (a bad request line, a header line without a
        // colon, ...): 400 with the parser's reason, as RFC 9112 asks and nginx does.
        reject(http::status::bad_request, "malformed request: " + ec.message(),
               reject_reason::bad_request);
    }

    /// Path, method, origin and query: what is asked for, or nothing when already answered
    /// (an error, or a CORS preflight).
    std::optional<subscribe_request> route() {
        const auto& req = parser_->get();
        origin_ = std::string(req[http::field::origin]);
        if (req.target().size() > cfg_.server.max_target_bytes) {
            reject(http::status::uri_too_long, "request target too long",
                   reject_reason::target_too_long);
            return std::nullopt;
        }
        const auto target = split_target(req.target());
        if (target.path != cfg_.sse.path) {
            reject(http::status::not_found, "not found", reject_reason::not_found);
            return std::nullopt;
        }
        if (req.method() == http::verb::options) {
            preflight();
            return std::nullopt;
        }
        // With an allow-list configured, a browser page from another origin could not read the
        // stream anyway: refuse it before it takes a connection slot and subscriptions.
        if (!origin_.empty() && !cfg_.cors.allowed_origins.empty() && !origin_allowed()) {
            reject(http::status::forbidden, "origin not allowed",
                   reject_reason::origin_not_allowed);
            return std::nullopt;
        }
        if (req.method() != http::verb::get) {
            reject(http::status::method_not_allowed, "method not allowed",
                   reject_reason::method_not_allowed);
            return std::nullopt;
        }
        subscribe_request_error perr;
        auto sub = parse_subscribe_request(target.query, cfg_.auth.jwt.query_param,
                                           cfg_.sse.max_topics, perr);
        if (!sub) reject(http::status::bad_request, perr.reason, reject_reason::bad_request);
        return sub;
    }

    /// Who is asking, and may they read the topics they named.
    std::optional<principal> authorize(const subscribe_request& sub) {
        const auto& req = parser_->get();
        credentials creds;
        creds.authorization = req[http::field::authorization];
        creds.cookie_header = req[http::field::cookie];
        creds.query_token = sub.token;
        creds.query_user = sub.user;
        auto who = auth_.authenticate(creds);
        if (auto* failure = std::get_if<auth_failure>(&who)) {
            reject(static_cast<http::status>(failure->status), failure->reason,
                   failure->status == 403 ? reject_reason::forbidden : reject_reason::unauthorized);
            return std::nullopt;
        }
        auto& user = std::get<principal>(who);
        if (shard_.revocations().refuses(user.user, user.issued_at, user.jti,
                                         static_cast<std::int64_t>(std::time(nullptr)))) {
            reject(http::status::unauthorized, "token revoked", reject_reason::revoked);
            return std::nullopt;
        }
        if (auto denied = auth_.check_topics(user, sub.topics)) {
            reject(static_cast<http::status>(denied->status), denied->reason,
                   reject_reason::forbidden);
            return std::nullopt;
        }
        return std::move(user);
    }

    /// The limits: draining, the instance's connections, the user's. On success the user holds
    /// one of its slots (released by the shard when the session detaches).
    bool admit(const principal& user) {
        // Transient refusals must be 200s: any other status makes EventSource give up for good.
        if (shards_.draining()) {
            come_back_later(reject_reason::draining);
            return false;
        }
        if (shards_.connections_total().load(std::memory_order_relaxed) >
            cfg_.server.max_connections) {
            come_back_later(reject_reason::instance_full);
            return false;
        }
        if (!shards_.users().try_acquire(user.user)) {
            reject(http::status::too_many_requests, "too many connections for this user",
                   reject_reason::too_many_per_user);
            return false;
        }
        return true;
    }

    /// Turns the connection into a session on this shard and, with history, asks for what the
    /// client missed.
    void open_stream(principal user, const subscribe_request& sub) {
        std::optional<stream_position> from;
        const auto resume = resume_point(sub, from);
        const bool awaits_history = shards_.has_history();
        auto head = opening_bytes();
        // The long-lived part keeps only the bare socket: no parser, buffer or stream timers.
        stream_.expires_never();
        auto channels = channels_of(user.user, sub);
        const auto expires_at = expires_at_of(user);
        auto s = std::make_shared<session>(shard_, stream_.release_socket(), std::move(user.user),
                                           std::move(channels), expires_at, awaits_history,
                                           user.issued_at.value_or(-1),
                                           user.jti.empty() ? 0 : jti_tag_of(user.jti));
        parser_.reset();
        shard_.attach(s, std::move(head));
        if (awaits_history) request_history(s, std::move(from), resume);
    }

    /// The response head, the reconnect delay and a first comment (so proxies and clients see
    /// bytes at once). The same bytes for every stream without CORS headers: shared per shard.
    frame opening_bytes() {
        auto cors = cors_headers();
        if (cors.empty() && shard_.plain_stream_head()) return shard_.plain_stream_head();
        auto bytes = std::make_shared<const std::string>(
            stream_head() + "retry: " + std::to_string(cfg_.sse.retry_ms) + "\n: connected\n\n");
        if (cors.empty()) shard_.plain_stream_head() = bytes;
        return bytes;
    }

    static std::vector<std::string> channels_of(const std::string& user,
                                                const subscribe_request& sub) {
        std::vector<std::string> channels;
        channels.reserve(2 + sub.topics.size());
        channels.push_back(user_channel(user));
        channels.emplace_back(broadcast_channel);
        for (const auto& t : sub.topics) channels.push_back(topic_channel(t));
        return channels;
    }

    static std::int64_t expires_at_of(const principal& user) {
        if (!user.expires_at) return 0;
        return std::chrono::duration_cast<std::chrono::seconds>(user.expires_at->time_since_epoch())
            .count();
    }

    /// Where the client stands: Last-Event-ID (EventSource's own reconnect) wins over
    /// ?lastEventId= (first connect of a page that stored its position).
    resume_request resume_point(const subscribe_request& sub,
                                std::optional<stream_position>& from) {
        std::string_view last_id = parser_->get()["Last-Event-ID"];
        if (last_id.empty()) last_id = sub.last_event_id;
        resume_request resume;
        resume.asked_at = std::chrono::steady_clock::now();
        if (!last_id.empty()) {
            resume.had_last_event_id = true;
            if (cfg_.redis.deployment == redis_deployment::cluster) {
                // A composite cursor (core/cluster_cursor.hpp) travels to the broker as its text
                // in `epoch`; anything else (a single-mode id, junk) is an unknown position.
                if (cluster_cursor::parse(last_id)) from = stream_position{std::string(last_id)};
                resume.malformed = !from;
                return resume;
            }
            from = stream_position::parse(last_id);
            resume.malformed = !from;
            if (from) resume.from_seq = from->seq;
        }
        return resume;
    }

    void request_history(const std::shared_ptr<session>& s, std::optional<stream_position> from,
                         const resume_request& resume) {
        // Counted here, when the stream opens: a client that leaves before its history read
        // answers still came back with a Last-Event-ID (clients count it when the head arrives).
        if (resume.had_last_event_id) shard_counters::bump(shard_.counters().resumes);
        // The shard told the router about new channels in attach(); this request is posted
        // after that, so the control loop subscribes before it reads history.
        std::weak_ptr<session> weak = s;
        shards_.request_history(
            s->channels().to_vector(), std::move(from),
            [&owner = shard_, weak, resume](std::shared_ptr<const history_read> read) {
                boost::asio::post(owner.context(),
                                  [weak, read = std::move(read), resume]() mutable {
                                      if (auto live = weak.lock())
                                          live->on_history(std::move(read), resume);
                                  });
            },
            [weak] { return !weak.expired(); }); // weak_ptr's count is safe to read anywhere
    }

    /// The response head of a stream, with CORS headers when the origin is allowed. Written by
    /// hand: Beast's serializer would add Content-Length: 0 to a body-less response.
    std::string stream_head() const {
        std::string h = "HTTP/1.1 200 OK\r\n"
                        "Content-Type: text/event-stream\r\n"
                        "Cache-Control: no-cache\r\n"
                        "X-Accel-Buffering: no\r\n";
        h += cors_headers();
        h += "\r\n";
        return h;
    }

    bool origin_listed() const {
        const auto& list = cfg_.cors.allowed_origins;
        return std::find(list.begin(), list.end(), origin_) != list.end();
    }

    bool origin_allowed() const {
        const auto& list = cfg_.cors.allowed_origins;
        return origin_listed() || std::find(list.begin(), list.end(), "*") != list.end();
    }

    std::string cors_headers() const {
        const auto& cors = cfg_.cors;
        if (origin_.empty() || cors.allowed_origins.empty()) return {};
        const bool listed = origin_listed();
        if (!origin_allowed()) return "Vary: Origin\r\n";
        std::string h = "Access-Control-Allow-Origin: ";
        h += listed ? origin_ : "*";
        h += "\r\nVary: Origin\r\n";
        if (cors.allow_credentials && listed) h += "Access-Control-Allow-Credentials: true\r\n";
        return h;
    }

    void preflight() {
        auto text = std::make_shared<std::string>(
            "HTTP/1.1 204 No Content\r\n"
            "Access-Control-Allow-Methods: GET, OPTIONS\r\n"
            "Access-Control-Allow-Headers: Authorization, Last-Event-ID, Cache-Control\r\n"
            "Access-Control-Max-Age: 600\r\n"
            "Content-Length: 0\r\n"
            "Connection: close\r\n");
        *text += cors_headers();
        *text += "\r\n";
        write_and_close(std::move(text), close_reason::rejected);
    }

    void reject(http::status status, std::string_view reason, reject_reason why) {
        shard_counters& c = shard_.counters();
        c.count_reject(why);
        auto text = std::make_shared<std::string>();
        const std::string body = std::string(reason) + "\n";
        *text += "HTTP/1.1 " + std::to_string(static_cast<unsigned>(status)) + " " +
                 std::string(http::obsolete_reason(status)) + "\r\n";
        *text += "Content-Type: text/plain; charset=utf-8\r\n";
        *text += "Cache-Control: no-store\r\n";
        if (status == http::status::unauthorized) *text += "WWW-Authenticate: Bearer\r\n";
        if (status == http::status::method_not_allowed) *text += "Allow: GET, OPTIONS\r\n";
        *text += cors_headers();
        *text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        *text += "Connection: close\r\n\r\n";
        *text += body;
        write_and_close(std::move(text), close_reason::rejected);
    }

    void come_back_later(reject_reason why) {
        shard_.counters().count_reject(why);
        auto text = std::make_shared<std::string>(stream_head());
        *text += *shard_.retry_hint();
        write_and_close(std::move(text), close_reason::rejected);
    }

    void write_and_close(std::shared_ptr<std::string> text, close_reason why) {
        parser_.reset();
        stream_.expires_after(std::chrono::seconds(5));
        asio::async_write(
            stream_, asio::buffer(*text),
            [self = shared_from_this(), text, why](beast::error_code ec, std::size_t) {
                if (ec) return self->fail(why);
                beast::error_code ignored;
                self->stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
                self->linger(why, 0);
            });
    }

    /// Reads and discards what the client still sends (a request body, say) until it closes,
    /// bounded in bytes and time: closing with unread bytes makes the kernel send a reset,
    /// which can destroy the answer before the client reads it.
    void linger(close_reason why, std::size_t drained) {
        constexpr std::size_t max_drain = 64 * 1024;
        if (drained >= max_drain) return fail(why);
        buffer_.clear();
        stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this(), why, drained](
                                                           beast::error_code ec, std::size_t n) {
            if (ec) return self->fail(why);
            self->linger(why, drained + n);
        });
    }

    void fail(close_reason why) {
        // Counted before the socket closes: whoever sees the close sees it counted (the fault
        // test reads ssegw_connections_closed_total right after its 200 sockets were cut).
        shard_.handshake_failed(why);
        stream_.close();
    }

    shard& shard_;
    shard_set& shards_;
    const gateway_config& cfg_;
    const authenticator& auth_;
    beast::basic_stream<asio::ip::tcp, asio::io_context::executor_type,
                        beast::unlimited_rate_policy>
        stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::empty_body>> parser_;
    std::string origin_;
};

} // namespace

void start_handshake(shard& owner, const authenticator& auth, shard_socket socket) {
    std::make_shared<handshake>(owner, auth, std::move(socket))->start();
}

} // namespace ssegw
