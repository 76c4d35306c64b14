#pragma once
// Accepts subscriber connections and hands each to a shard. In least-loaded mode one acceptor
// (on the control loop) picks, per connection, the shard with the fewest connections and
// accepts straight onto that shard's io_context; in reuseport mode each shard runs its own
// SO_REUSEPORT acceptor and the kernel spreads connections by hash.

#include <memory>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

namespace ssegw {

class authenticator;
class shard;
class shard_set;

class listener : public std::enable_shared_from_this<listener> {
public:
    /// Binds at once (throws boost::system::system_error when the address is taken). With
    /// `only` (reuseport mode), every connection goes to that shard; else to the least loaded.
    listener(boost::asio::io_context& ioc, const boost::asio::ip::tcp::endpoint& at,
             shard_set& shards, shard* only, const authenticator& auth);

    void start();
    /// Closes the acceptor; connections already handed over are unaffected. Thread-safe.
    void stop();
    boost::asio::ip::tcp::endpoint local_endpoint() const;

private:
    void do_accept();
    /// Accepts what is waiting (up to a bound), then waits again.
    void accept_pending();
    void hand_over(int fd);
    void pause_accepting(boost::system::error_code ec);
    shard& pick() const;

    boost::asio::ip::tcp::acceptor acceptor_;
    boost::asio::ip::tcp protocol_; ///< of the bound address, for the accepted sockets
    boost::asio::steady_timer backoff_;
    shard_set& shards_;
    shard* only_;
    const authenticator& auth_;
};

} // namespace ssegw
