#include "ssegw/http/listener.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/socket_base.hpp>
#include <spdlog/spdlog.h>

#include "ssegw/http/handshake.hpp"
#include "ssegw/shard/shard.hpp"
#include "ssegw/shard/shard_set.hpp"
#include "ssegw/shard/shard_socket.hpp"

namespace ssegw {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

listener::listener(asio::io_context& ioc, const tcp::endpoint& at, shard_set& shards, shard* only,
                   const authenticator& auth)
    : acceptor_(ioc), backoff_(ioc), shards_(shards), only_(only), auth_(auth) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    if (only_ != nullptr)
        acceptor_.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
    acceptor_.bind(at);
    acceptor_.listen(asio::socket_base::max_listen_connections);
}

void listener::start() { do_accept(); }

void listener::stop() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
        boost::system::error_code ignored;
        self->acceptor_.close(ignored);
        self->backoff_.cancel();
    });
}

tcp::endpoint listener::local_endpoint() const { return acceptor_.local_endpoint(); }

shard& listener::pick() const { return only_ != nullptr ? *only_ : shards_.least_loaded(); }

void listener::do_accept() {
    if (!acceptor_.is_open()) return;
    shard& target = pick();
    // The new socket belongs to the chosen shard's io_context from the start.
    acceptor_.async_accept(
        target.context(),
        [self = shared_from_this(), &target](boost::system::error_code ec, shard_socket socket) {
            if (ec == asio::error::operation_aborted || !self->acceptor_.is_open()) return;
            if (ec) {
                // EMFILE and friends: back off briefly instead of spinning on the error.
                spdlog::warn("accept failed: {}; pausing accepts for 100 ms", ec.message());
                self->backoff_.expires_after(std::chrono::milliseconds(100));
                self->backoff_.async_wait([self](boost::system::error_code e) {
                    if (!e) self->do_accept();
                });
                return;
            }
            boost::system::error_code ignored;
            socket.set_option(tcp::no_delay(true), ignored);
            target.reserve_slot();
            asio::post(target.context(),
                       [&target, &auth = self->auth_, s = std::move(socket)]() mutable {
                           start_handshake(target, auth, std::move(s));
                       });
            self->do_accept();
        });
}

} // namespace ssegw
