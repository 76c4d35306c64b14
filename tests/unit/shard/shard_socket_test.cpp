// adopt_accepted(): a descriptor from accept4(SOCK_NONBLOCK) becomes a working shard_socket that
// Asio knows to be non-blocking already (no ioctl at its first asynchronous operation).
#include "ssegw/shard/shard_socket.hpp"

#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TEST(AdoptAccepted, AsioSeesTheSocketNonBlockingAndItCarriesData) {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor.set_option(tcp::no_delay(true)); // as the listener does, for every connection
    tcp::socket client(ioc);
    client.connect(acceptor.local_endpoint());

    const int fd =
        ::accept4(acceptor.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    ASSERT_GE(fd, 0);
    ssegw::shard_socket server(ioc);
    ASSERT_FALSE(ssegw::adopt_accepted(server, tcp::v4(), fd));
    EXPECT_EQ(server.native_handle(), fd);
    // native_non_blocking() reads the flag Asio consults before issuing its own ioctl.
    EXPECT_TRUE(server.native_non_blocking());
    // The user-visible mode stays blocking: synchronous calls still wait as documented.
    EXPECT_FALSE(server.non_blocking());
    EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    // Linux copies TCP_NODELAY from the listening socket: the listener relies on it.
    tcp::no_delay nodelay;
    server.get_option(nodelay);
    EXPECT_TRUE(nodelay.value());

    // An asynchronous read completes with what the peer wrote, then with EOF when it closes.
    char byte = 0;
    boost::system::error_code first, second;
    std::size_t n = 0;
    server.async_read_some(asio::buffer(&byte, 1), [&](auto ec, std::size_t got) {
        first = ec;
        n = got;
        server.async_read_some(asio::buffer(&byte, 1),
                               [&](auto ec2, std::size_t) { second = ec2; });
        client.close();
    });
    asio::write(client, asio::buffer("x", 1));
    ioc.run_for(std::chrono::seconds(5));
    EXPECT_FALSE(first);
    EXPECT_EQ(n, 1u);
    EXPECT_EQ(byte, 'x');
    EXPECT_EQ(second, asio::error::eof);
    server.close();
}

TEST(AdoptAccepted, ABadDescriptorIsReportedNotAdopted) {
    asio::io_context ioc;
    ssegw::shard_socket socket(ioc);
    EXPECT_TRUE(ssegw::adopt_accepted(socket, tcp::v4(), -1));
    EXPECT_FALSE(socket.is_open());
}

} // namespace
