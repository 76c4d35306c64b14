#include "ssegw/shard/shard_socket.hpp"

#include <unistd.h>

#include <boost/asio/detail/socket_ops.hpp>

namespace ssegw {

namespace {

/// Reaches the Asio socket's state flags. basic_socket keeps its implementation protected;
/// naming the member through a derived class is the standard way to form a pointer to it, and
/// the pointer then applies to any shard_socket (no object of this type is ever made).
struct socket_state_access : shard_socket {
    static boost::asio::detail::socket_ops::state_type& state(shard_socket& s) {
        return (s.*(&socket_state_access::impl_)).get_implementation().state_;
    }
};

} // namespace

boost::system::error_code adopt_accepted(shard_socket& socket, const boost::asio::ip::tcp& protocol,
                                         int fd) {
    boost::system::error_code ec;
    socket.assign(protocol, fd, ec);
    if (ec) {
        ::close(fd);
        return ec;
    }
    namespace ops = boost::asio::detail::socket_ops;
    auto& state = socket_state_access::state(socket);
    state = static_cast<ops::state_type>((state | ops::internal_non_blocking) & ~ops::possible_dup);
    return ec;
}

} // namespace ssegw
