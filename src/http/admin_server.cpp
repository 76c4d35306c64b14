#include "ssegw/http/admin_server.hpp"

#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "ssegw/core/channel.hpp"
#include "ssegw/core/text.hpp"

namespace ssegw {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

class admin_connection : public std::enable_shared_from_this<admin_connection> {
public:
    admin_connection(tcp::socket socket, std::shared_ptr<const admin_routes> routes)
        : stream_(std::move(socket)), routes_(std::move(routes)) {}

    void start() { do_read(); }

private:
    void do_read() {
        parser_.emplace();
        parser_->header_limit(16 * 1024);
        parser_->body_limit(routes_->max_body_bytes);
        stream_.expires_after(std::chrono::seconds(30));
        http::async_read(
            stream_, buffer_, *parser_,
            [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec == http::error::body_limit)
            return respond(http::status::payload_too_large, R"({"error":"body too large"})", false);
        if (ec) return stream_.close();
        auto req = parser_->release();
        keep_alive_ = req.keep_alive();
        const auto target = std::string_view(req.target());
        const auto path = target.substr(0, target.find('?'));

        if (path == "/healthz") return respond(http::status::ok, "ok\n", true);
        if (path == "/readyz") {
            const bool ready = routes_->ready();
            return respond(ready ? http::status::ok : http::status::service_unavailable,
                           ready ? "ready\n" : "not ready\n", true);
        }
        if (path == "/metrics") return respond(http::status::ok, routes_->metrics(), true, true);
        if (is_control_path(path) && !authorized(req[http::field::authorization])) {
            if (routes_->refused) routes_->refused();
            return respond(http::status::unauthorized,
                           R"({"error":"this endpoint needs Authorization: Bearer <admin key>"})",
                           false);
        }
        if (path == "/publish") {
            if (req.method() != http::verb::post)
                return respond(http::status::method_not_allowed, R"({"error":"use POST"})", false);
            return publish(std::move(req.body()));
        }
        if (path == "/disconnect" && routes_->disconnect) {
            if (req.method() != http::verb::post)
                return respond(http::status::method_not_allowed, R"({"error":"use POST"})", false);
            return routes_->disconnect(std::move(req.body()), replier());
        }
        if (path == "/position" && routes_->position) {
            if (req.method() != http::verb::get)
                return respond(http::status::method_not_allowed, R"({"error":"use GET"})", false);
            const auto q = target.find('?');
            return routes_->position(std::string(q == std::string_view::npos
                                                     ? std::string_view()
                                                     : target.substr(q + 1)),
                                     replier());
        }
        if (path == "/presence" && routes_->presence) {
            if (req.method() != http::verb::get)
                return respond(http::status::method_not_allowed, R"({"error":"use GET"})", false);
            const auto q = target.find('?');
            return routes_->presence(std::string(q == std::string_view::npos
                                                     ? std::string_view()
                                                     : target.substr(q + 1)),
                                     replier());
        }
        respond(http::status::not_found, "not found\n", true);
    }

    /// The verbs a backend uses; /healthz, /readyz and /metrics stay open for probes.
    static bool is_control_path(std::string_view path) {
        return path == "/publish" || path == "/disconnect" || path == "/presence" ||
               path == "/position";
    }

    bool authorized(std::string_view authorization) const {
        if (routes_->api_key.empty()) return true;
        return constant_time_equal(routes_->api_key, bearer_token(authorization));
    }

    admin_routes::reply_fn replier() {
        return [self = shared_from_this()](unsigned status, std::string reply) {
            self->respond(static_cast<http::status>(status), std::move(reply), true);
        };
    }

    void publish(std::string body) {
        auto doc = nlohmann::json::parse(body, nullptr, false);
        if (doc.is_discarded() || !doc.is_object())
            return respond(http::status::bad_request, R"({"error":"body must be a JSON object"})",
                           false);
        auto ch = doc.find("channel");
        if (ch == doc.end() || !ch->is_string() || !kind_of(ch->get_ref<const std::string&>()))
            return respond(
                http::status::bad_request,
                R"({"error":"channel must be \"user:<id>\", \"topic:<name>\" or \"broadcast\""})",
                false);
        std::string channel = ch->get<std::string>();
        doc.erase("channel");
        // The rest of the object is the payload exactly as a backend would PUBLISH it.
        routes_->publish(std::move(channel), doc.dump(), replier());
    }

    void respond(http::status status, std::string body, bool can_keep_alive,
                 bool prometheus = false) {
        auto res = std::make_shared<http::response<http::string_body>>(status, 11);
        res->set(http::field::server, "sse-gateway");
        if (status == http::status::unauthorized)
            res->set(http::field::www_authenticate, R"(Bearer realm="sse-gateway admin")");
        res->set(http::field::content_type, prometheus ? "text/plain; version=0.0.4; charset=utf-8"
                                            : (!body.empty() && body.front() == '{')
                                                ? "application/json"
                                                : "text/plain; charset=utf-8");
        res->body() = std::move(body);
        res->keep_alive(keep_alive_ && can_keep_alive);
        res->prepare_payload();
        http::async_write(
            stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                if (ec || !res->keep_alive()) {
                    beast::error_code ignored;
                    self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
                    return self->stream_.close();
                }
                self->do_read();
            });
    }

    beast::tcp_stream stream_;
    beast::flat_buffer buffer_;
    std::optional<http::request_parser<http::string_body>> parser_;
    std::shared_ptr<const admin_routes> routes_;
    bool keep_alive_ = false;
};

} // namespace

admin_server::admin_server(asio::io_context& ioc, const tcp::endpoint& at, admin_routes routes)
    : acceptor_(ioc), backoff_(ioc),
      routes_(std::make_shared<const admin_routes>(std::move(routes))) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen();
}

void admin_server::start() { do_accept(); }

void admin_server::stop() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
        boost::system::error_code ignored;
        self->acceptor_.close(ignored);
        self->backoff_.cancel();
    });
}

tcp::endpoint admin_server::local_endpoint() const { return acceptor_.local_endpoint(); }

void admin_server::do_accept() {
    acceptor_.async_accept(
        [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
            if (!self->acceptor_.is_open()) return;
            if (ec) {
                // Out of descriptors and the like: pause instead of spinning on the error.
                self->backoff_.expires_after(std::chrono::milliseconds(100));
                self->backoff_.async_wait([self](boost::system::error_code e) {
                    if (!e) self->do_accept();
                });
                return;
            }
            std::make_shared<admin_connection>(std::move(socket), self->routes_)->start();
            self->do_accept();
        });
}

} // namespace ssegw
