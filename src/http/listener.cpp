#include "ssegw/http/listener.hpp"

#include <sys/socket.h>

#include <cerrno>

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
    : acceptor_(ioc), protocol_(at.protocol()), backoff_(ioc), shards_(shards), only_(only),
      auth_(auth) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    if (only_ != nullptr)
        acceptor_.set_option(asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>(true));
    // Accepted sockets inherit TCP_NODELAY from the listening socket on Linux: set once here,
    // not with one setsockopt per connection.
    acceptor_.set_option(tcp::no_delay(true));
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
    // Wait for readiness and accept with accept4 ourselves rather than async_accept: Asio's
    // accept leaves the descriptor blocking (an ioctl at its first asynchronous operation) and
    // marked a possible duplicate (an epoll_ctl DEL before close). See adopt_accepted().
    acceptor_.async_wait(tcp::acceptor::wait_read,
                         [self = shared_from_this()](boost::system::error_code ec) {
                             if (ec == asio::error::operation_aborted || !self->acceptor_.is_open())
                                 return;
                             if (ec) return self->pause_accepting(ec);
                             self->accept_pending();
                         });
}

void listener::accept_pending() {
    // Bounded per wake-up so a connection storm cannot starve this loop's other work; what is
    // left is reported again at once by the next wait.
    constexpr int max_per_wakeup = 64;
    for (int i = 0; i < max_per_wakeup; ++i) {
        const int fd =
            ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            const int err = errno;
            if (err == EAGAIN || err == EWOULDBLOCK) break;
            // The client reset before we took it, or a signal: nothing to do for this one.
            if (err == ECONNABORTED || err == EINTR || err == EPROTO) continue;
            // EMFILE, ENFILE, ENOBUFS, ENOMEM: back off instead of spinning on the error.
            return pause_accepting(
                boost::system::error_code(err, boost::system::system_category()));
        }
        hand_over(fd);
    }
    do_accept();
}

void listener::hand_over(int fd) {
    shard& target = pick();
    // The socket belongs to the chosen shard's io_context (and reactor) from the start.
    shard_socket socket(target.context());
    if (auto ec = adopt_accepted(socket, protocol_, fd)) {
        spdlog::warn("accepted connection dropped: {}", ec.message());
        return;
    }
    target.reserve_slot();
    asio::post(target.context(), [&target, &auth = auth_, s = std::move(socket)]() mutable {
        start_handshake(target, auth, std::move(s));
    });
}

void listener::pause_accepting(boost::system::error_code ec) {
    spdlog::warn("accept failed: {}; pausing accepts for 100 ms", ec.message());
    backoff_.expires_after(std::chrono::milliseconds(100));
    backoff_.async_wait([self = shared_from_this()](boost::system::error_code e) {
        if (!e) self->do_accept();
    });
}

} // namespace ssegw
