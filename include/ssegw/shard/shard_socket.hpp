#pragma once
// The socket type of a client connection: bound to its shard's io_context by type. Asio's
// default socket carries a type-erased any_io_executor, through which every completion is
// handed on — and with up to thousands of writes completing per broadcast, its small per-thread
// recycling cache overflowed into ~0.17 malloc per delivery (docs/benchmarks.md). The typed
// executor dispatches completions directly.

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace ssegw {

using shard_socket =
    boost::asio::basic_stream_socket<boost::asio::ip::tcp, boost::asio::io_context::executor_type>;

/// Takes a descriptor the listener accepted with accept4(SOCK_NONBLOCK) into `socket` (registered
/// with the socket's reactor: one epoll_ctl ADD) and tells Asio what it cannot know from the bare
/// descriptor: it is already non-blocking (else Asio's first asynchronous operation issues an
/// ioctl(FIONBIO)), and it is no duplicate (else Asio's close() removes it from epoll with an
/// epoll_ctl DEL the kernel does by itself when the only descriptor closes). Two system calls
/// per connection fewer (docs/benchmarks.md "Fixed costs"). On failure the descriptor is closed.
boost::system::error_code adopt_accepted(shard_socket& socket, const boost::asio::ip::tcp& protocol,
                                         int fd);

} // namespace ssegw
