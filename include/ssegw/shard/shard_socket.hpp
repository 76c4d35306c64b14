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

} // namespace ssegw
