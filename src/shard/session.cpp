#include "ssegw/shard/session.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "ssegw/shard/runtime_context.hpp"
#include "ssegw/shard/shard.hpp"

namespace ssegw {

namespace asio = boost::asio;

namespace {

/// Most frames a single gathered write carries (IOV_MAX is far higher; this bounds latency).
constexpr std::size_t max_gather = 64;

/// A buffer sequence over storage the session keeps alive for the write: Asio copies the
/// sequence object into its operation, so a view costs 16 bytes where a vector would allocate.
struct buffer_view {
    const asio::const_buffer* first;
    const asio::const_buffer* last;
    const asio::const_buffer* begin() const noexcept { return first; }
    const asio::const_buffer* end() const noexcept { return last; }
};

} // namespace

session::session(shard& owner, asio::ip::tcp::socket socket, std::string user,
                 std::vector<std::string> channels, std::int64_t expires_at_unix)
    : shard_(owner), socket_(std::move(socket)), user_(std::move(user)),
      channels_(std::move(channels)), expires_at_unix_(expires_at_unix) {}

void session::start(frame head) {
    last_write_tick_ = shard_.now_tick();
    deliver(head);
    do_watch();
}

void session::deliver(const frame& f) {
    if (closed_ || close_after_flush_) return;
    const auto limit = shard_.runtime().config.sse.max_queue_bytes;
    if (queued_bytes_ + f->size() > limit) {
        // Closing here would edit the registry list the shard is iterating: defer it, and stop
        // taking frames at once so memory stays bounded.
        close_after_flush_ = true;
        queue_.clear();
        queued_bytes_ = 0;
        asio::post(socket_.get_executor(),
                   [self = shared_from_this()] { self->close(close_reason::slow_consumer); });
        return;
    }
    queue_.push_back(f);
    queued_bytes_ += f->size();
    if (!write_in_flight_) do_write();
}

void session::do_write() {
    if (queue_.empty() || closed_) return;
    write_in_flight_ = true;
    write_started_tick_ = shard_.now_tick();
    if (queue_.size() <= max_gather) {
        writing_.swap(queue_);
    } else {
        writing_.assign(std::make_move_iterator(queue_.begin()),
                        std::make_move_iterator(queue_.begin() + max_gather));
        queue_.erase(queue_.begin(), queue_.begin() + max_gather);
    }
    auto handler = [self = shared_from_this()](const boost::system::error_code& ec,
                                               std::size_t n) { self->on_write(ec, n); };
    if (writing_.size() == 1) {
        asio::async_write(socket_, asio::buffer(*writing_.front()), std::move(handler));
        return;
    }
    // Gathered write: one writev for everything queued since the last write.
    gather_.clear();
    gather_.reserve(writing_.size());
    for (const auto& f : writing_) gather_.emplace_back(f->data(), f->size());
    asio::async_write(socket_, buffer_view{gather_.data(), gather_.data() + gather_.size()},
                      std::move(handler));
}

void session::on_write(const boost::system::error_code& ec, std::size_t bytes) {
    write_in_flight_ = false;
    for (const auto& f : writing_) queued_bytes_ -= f->size();
    writing_.clear();
    gather_.clear();
    if (closed_) return;
    if (ec) {
        close(close_reason::client_gone);
        return;
    }
    auto& c = shard_.counters();
    shard_counters::bump(c.bytes_written, bytes);
    last_write_tick_ = shard_.now_tick();
    if (!queue_.empty()) {
        do_write();
        return;
    }
    if (close_after_flush_) {
        boost::system::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        close(pending_reason_);
    }
}

void session::do_watch() {
    // The client never sends anything after its request; a completed read means it left (EOF or
    // reset). One pending one-byte read per session, no timer.
    socket_.async_read_some(asio::buffer(&watch_byte_, 1),
                            [self = shared_from_this()](const boost::system::error_code& ec,
                                                        std::size_t) { self->on_watch(ec); });
}

void session::on_watch(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec) {
        close(close_reason::client_gone);
        return;
    }
    do_watch(); // stray bytes after the request are ignored
}

void session::close_gracefully(const frame& last, close_reason why) {
    if (closed_ || close_after_flush_) return;
    pending_reason_ = why;
    queue_.push_back(last);
    queued_bytes_ += last->size();
    close_after_flush_ = true;
    if (!write_in_flight_) do_write();
}

void session::close(close_reason why) {
    if (closed_) return;
    closed_ = true;
    auto self = shared_from_this(); // detach drops the shard's reference
    boost::system::error_code ignored;
    socket_.close(ignored);
    queue_.clear();
    queued_bytes_ = 0;
    shard_.detach(*this, why);
}

void session::on_tick(std::uint32_t now_tick, std::int64_t now_unix) {
    if (closed_) return;
    const auto& cfg = shard_.runtime().config.sse;
    if (write_in_flight_) {
        if (now_tick - write_started_tick_ >= cfg.write_timeout_seconds)
            close(close_reason::write_stalled);
        return;
    }
    if (expires_at_unix_ != 0 && now_unix >= expires_at_unix_) {
        close_gracefully(shard_.retry_hint(), close_reason::token_expired);
        return;
    }
    if (queue_.empty() && now_tick - last_write_tick_ >= cfg.heartbeat_seconds) {
        shard_counters::bump(shard_.counters().heartbeats);
        deliver(shard_.heartbeat());
    }
}

} // namespace ssegw
