#pragma once
// The operator's port: /healthz, /readyz, /metrics and POST /publish. Small, keep-alive HTTP on
// the control loop; never on the public port.

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ssegw {

struct admin_routes {
    std::function<bool()> ready;
    std::function<std::string()> metrics;
    /// Publishes; replies (status, JSON body) through the callback, possibly later.
    std::function<void(std::string channel, std::string payload,
                       std::function<void(unsigned status, std::string body)>)>
        publish;
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
