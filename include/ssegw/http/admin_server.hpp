#pragma once
// The operator's and the backends' port: /healthz, /readyz, /metrics (always open), and the
// control verbs POST /publish, POST /disconnect, GET /position and GET /presence, which require `Authorization: Bearer <admin key>` when a key is configured. Small,
// keep-alive HTTP on the control loop; never on the public port.

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ssegw {

struct admin_routes {
    /// Answers a request: (status, body), possibly later; a body starting with '{' is JSON.
    using reply_fn = std::function<void(unsigned status, std::string body)>;

    std::function<bool()> ready;
    std::function<std::string()> metrics;
    /// Publishes; replies (status, JSON body) through the callback, possibly later.
    std::function<void(std::string channel, std::string payload, reply_fn)> publish;
    /// POST /disconnect with its raw body (parsed and checked by the callee).
    std::function<void(std::string body, reply_fn)> disconnect;
    /// GET /position with its raw query: a resume position taken now (Redis Cluster mode: for
    /// the stream of ?user= and ?topic=..., whose channels each have their own position).
    std::function<void(std::string query, reply_fn)> position;
    /// GET /presence with its raw query (after '?'; parsed and checked by the callee).
    std::function<void(std::string query, reply_fn)> presence;
    /// A control request was refused for a missing or wrong admin key (for the metrics).
    std::function<void()> refused;
    /// The admin key; empty = the control verbs are open (loopback-only deployments).
    std::string api_key;
    std::size_t max_body_bytes = 1 << 20;
};

class admin_server : public std::enable_shared_from_this<admin_server> {
public:
    admin_server(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& at,
                 admin_routes routes);
    void start();
    void stop();
    boost::asio::ip::tcp::endpoint local_endpoint() const;

private:
    void do_accept();

    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::steady_timer backoff_;
    std::shared_ptr<const admin_routes> routes_;
};

} // namespace ssegw
