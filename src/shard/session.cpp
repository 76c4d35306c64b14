#include "ssegw/shard/session.hpp"

#include <algorithm>
#include <array>
#include <cerrno>

#include <sys/socket.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "ssegw/core/channel.hpp"
#include "ssegw/shard/shard.hpp"
#include "ssegw/sse/frame_body.hpp"

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

/// `event: history-truncated` with what is known, sent before a resume that cannot be complete.
frame truncated_notice(std::string_view reason, const std::vector<std::string>& channels) {
    nlohmann::json data = {{"reason", reason}};
    if (!channels.empty()) data["channels"] = channels;
    return std::make_shared<const std::string>(
        "event: history-truncated\ndata: " +
        data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n\n");
}

} // namespace

/// Exists only from the handshake until the missed events are queued.
struct session::resume_state {
    std::vector<routed_event_ptr> held; ///< live events that arrived meanwhile, in order
    std::uint64_t held_bytes = 0;
    std::shared_ptr<const history_read> replay; ///< set once the read is back
    std::size_t next = 0;                       ///< next entry of replay to queue
    std::chrono::steady_clock::time_point asked_at;
};

session::session(shard& owner, shard_socket socket, std::string user,
                 std::vector<std::string> channels, std::int64_t expires_at_unix,
                 bool awaits_history, std::int64_t issued_at_unix, std::uint64_t jti_tag)
    : shard_(owner), socket_(std::move(socket)),
      resume_(awaits_history ? std::make_unique<resume_state>() : nullptr),
      expires_at_unix_(expires_at_unix), issued_at_(issued_at_unix), jti_tag_(jti_tag) {
    // user() reads the id back from the user's channel; a caller that broke that rule would
    // see every per-user feature (limits, presence, disconnect) address someone else.
    if (channels.empty() || channels.front() != user_channel(user))
        channels.insert(channels.begin(), user_channel(user));
    channels_ = channel_list(channels);
}

std::string_view session::user() const noexcept {
    static const std::size_t prefix = user_channel("").size(); // "user:"
    return channels_.front().substr(prefix);
}

session::~session() = default;

void session::start(frame head) {
    last_write_tick_ = opened_tick_ = shard_.now_tick();
    if (const auto lifetime = shard_.config().sse.max_lifetime_seconds; lifetime != 0)
        leave_at_tick_ = shard_.now_tick() + lifetime - shard_.jitter(lifetime / 10 + 1);
    enqueue(head);
    do_watch();
}

void session::deliver(const routed_event_ptr& ev) {
    if (leaving()) return;
    if (resume_) {
        // Held until the missed events are written; bounded like the write queue.
        resume_->held_bytes += ev->bytes->size();
        if (resume_->held_bytes > shard_.config().sse.max_queue_bytes)
            return drop_as_slow_consumer();
        resume_->held.push_back(ev);
        return;
    }
    accept(*ev);
}

void session::accept(const routed_event& ev) {
    if (ev.per_session_id) return accept_per_session(ev);
    if (ev.seq != 0) {
        // History events arrive in sequence order; one already written (from the replay, or
        // through another path) is skipped, so the seam between replay and live has no doubles.
        if (ev.epoch == epoch_ && ev.seq <= last_seq_) return;
        epoch_ = ev.epoch;
        last_seq_ = ev.seq;
        position_ = ev.position;
        enqueue(ev.bytes);
        return;
    }
    enqueue(ev.bytes);
    // The payload set its own id: put the client's position back so its Last-Event-ID stays
    // one we can resume from.
    if (ev.moves_last_event_id)
        if (auto p = current_position()) enqueue(p);
}

void session::on_history(std::shared_ptr<const history_read> read, const resume_request& req) {
    if (leaving() || !resume_) return;
    auto& c = shard_.counters();
    if (!read->ok) {
        // Without history we cannot promise "nothing missed": send the client away to resume
        // later (maybe elsewhere) rather than going live with a silent gap.
        shard_counters::bump(c.resume_failures);
        return close_gracefully(shard_.retry_hint(), close_reason::history_unavailable);
    }
    if (!read->channel_tips.empty()) return on_cluster_history(std::move(read), req);
    if (req.malformed || read->unknown_position) {
        shard_counters::bump(c.unknown_positions);
        shard_counters::bump(c.truncated_resumes);
        enqueue(truncated_notice("unknown-position", {}));
    } else if (read->lost) {
        // Redis failed over and lost events after this position: which channels they were on
        // is gone with them, so the notice names none; what exists follows.
        shard_counters::bump(c.truncated_resumes);
        enqueue(truncated_notice("failover", read->truncated));
    } else if (!read->truncated.empty()) {
        shard_counters::bump(c.truncated_resumes);
        enqueue(truncated_notice("trimmed", read->truncated));
    }
    epoch_ = epoch_tag(read->tip.epoch);
    resume_->asked_at = req.asked_at;
    if (!req.had_last_event_id || req.malformed || read->unknown_position) {
        // Nothing to replay. The position handed out covers what was routed before this
        // answer; what the stream holds arrived after it registered, so all of it is owed, and
        // later live events are newer still: no filtering, the position only tells the client
        // where it stands if it has to reconnect before any event.
        last_seq_ = 0;
        position_ = shard_.position_frame(read->tip);
        if (position_) enqueue(position_);
        return release_held();
    }
    // After a failover the client's position may lie beyond what survived: the read started
    // from the last common point, so every entry it returned is owed.
    last_seq_ = read->lost ? 0 : req.from_seq;
    resume_->replay = std::move(read);
    pump_replay();
}

void session::release_held() {
    const auto waited = std::chrono::steady_clock::now() - resume_->asked_at;
    shard_.counters().resume_latency.observe_us(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(waited).count()));
    auto held = std::move(resume_->held);
    resume_.reset();
    for (const auto& ev : held) {
        if (leaving()) break;
        accept(*ev);
    }
}

void session::pump_replay() {
    if (!resume_ || !resume_->replay || leaving()) return;
    const auto& cfg = shard_.config().sse;
    const auto& entries = resume_->replay->entries;
    auto& c = shard_.counters();
    std::string id_text; // single mode's id, one buffer for the whole slice
    // Queue in slices of half the queue limit, the rest as writes complete: a long replay
    // neither trips the slow-consumer cut nor holds the whole backlog in frames at once.
    while (resume_->next < entries.size() && queued_bytes_ < cfg.max_queue_bytes / 2) {
        const auto& e = entries[resume_->next++];
        const auto id = replayed_id(e, id_text);
        if (!id) continue; // the client has it
        auto built = build_frame(e.payload, cfg.max_event_bytes, *id);
        if (built.dropped) continue; // the live path drops it the same way
        shard_counters::bump(c.replayed_events);
        queue_.push_back(std::move(built.bytes));
        queued_bytes_ += queue_.back()->size();
    }
    if (!write_in_flight()) do_write();
    if (resume_->next < entries.size()) return;
    finish_replay();
}

std::optional<std::string_view> session::replayed_id(const history_entry& e, std::string& id_text) {
    if (cursor_) {
        // Per channel: what the client has (its cursor's component) is skipped.
        if (!cursor_->advance(channels_.index_of(e.channel), e.at)) return std::nullopt;
        return cursor_->id();
    }
    if (e.position.seq <= last_seq_) return std::nullopt;
    last_seq_ = e.position.seq;
    id_text = e.position.format();
    return id_text;
}

void session::finish_replay() {
    const auto& read = *resume_->replay;
    if (cursor_) {
        // Every event of each channel up to its tip was before the position or replayed; held
        // events beyond the tips follow, filtered per channel.
        for (std::size_t i = 0; i < read.channel_tips.size(); ++i)
            cursor_->advance(i, read.channel_tips[i]);
        if (auto p = current_position()) enqueue(p);
        return release_held();
    }
    // Every event of our channels up to the tip was either before the position or replayed,
    // including those whose live copy has not arrived yet: they will be skipped.
    last_seq_ = std::max(last_seq_, read.tip.seq);
    position_ = shard_.position_frame(read.tip);
    if (position_) enqueue(position_);
    release_held();
}

void session::enqueue(const frame& f, const frame& then) {
    if (closed_ || close_after_flush_) return;
    const auto limit = shard_.config().sse.max_queue_bytes;
    const auto size = f->size() + (then ? then->size() : 0);
    if (queued_bytes_ + size > limit) return drop_as_slow_consumer();
    queue_.push_back(f);
    if (then) queue_.push_back(then);
    queued_bytes_ += size;
    if (!write_in_flight()) do_write();
}

void session::drop_as_slow_consumer() {
    // Closing here would edit the registry list the shard is iterating: defer it, and stop
    // taking frames at once so memory stays bounded.
    close_after_flush_ = true;
    discard_queue();
    resume_.reset();
    asio::post(socket_.get_executor(),
               [self = shared_from_this()] { self->close(close_reason::slow_consumer); });
}

void session::discard_queue() {
    // The frames of a write in flight stay (the kernel may still be reading them) and stay
    // counted: on_write() takes them off when it ends.
    queue_.erase(queue_.begin() + writing_, queue_.end());
    queued_bytes_ = 0;
    for (const auto& f : queue_) queued_bytes_ += f->size();
}

void session::do_write() {
    if (queue_.empty() || closed_) return;
    writing_ = static_cast<std::uint8_t>(std::min(queue_.size(), max_gather));
    write_started_tick_ = shard_.now_tick();
    // An idle stream is next visited at its heartbeat; this write's stall check is due sooner.
    shard_.visit_by(*this, write_started_tick_ + shard_.config().sse.write_timeout_seconds);
    auto handler = [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
        self->on_write(ec, n);
    };
    // The buffers point into the frames' strings, not into queue_: frames queued meanwhile may
    // move the vector's elements, never the bytes.
    if (writing_ == 1) {
        asio::async_write(socket_, asio::buffer(*queue_.front()), std::move(handler));
        return;
    }
    // Gathered write: one writev for everything queued since the last write.
    gather_ = std::make_unique<asio::const_buffer[]>(writing_);
    for (std::size_t i = 0; i < writing_; ++i)
        gather_[i] = asio::const_buffer(queue_[i]->data(), queue_[i]->size());
    asio::async_write(socket_, buffer_view{gather_.get(), gather_.get() + writing_},
                      std::move(handler));
}

void session::on_write(const boost::system::error_code& ec, std::size_t bytes) {
    for (std::size_t i = 0; i < writing_; ++i) queued_bytes_ -= queue_[i]->size();
    queue_.erase(queue_.begin(), queue_.begin() + writing_);
    writing_ = 0;
    gather_.reset();
    if (queue_.empty()) {
        // Caught up: give the vector's block back. An idle stream (nearly all of them, nearly
        // always) then holds none; the next event costs one allocation again.
        std::vector<frame>().swap(queue_);
    }
    if (closed_) return;
    if (ec) {
        close(close_reason::client_gone);
        return;
    }
    auto& c = shard_.counters();
    shard_counters::bump(c.bytes_written, bytes);
    bytes_written_ += bytes;
    last_write_tick_ = shard_.now_tick();
    if (resume_ && resume_->replay) pump_replay();
    if (!queue_.empty()) {
        if (!write_in_flight()) do_write();
        return;
    }
    if (close_after_flush_ && !write_in_flight()) {
        boost::system::error_code ignored;
        socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        close(pending_reason_);
    }
}

void session::do_watch() {
    // The client never sends anything after its request; the read completing means it left (EOF
    // or reset) or sent stray bytes. A one-byte read, not async_wait: Asio re-arms its
    // edge-triggered epoll registration (epoll_ctl MOD) for every wait but not for a read that
    // found nothing the last time, one system call per connection (docs/benchmarks.md "Fixed
    // costs"); the read operation Asio holds per idle stream is ~32 bytes bigger than a wait's.
    socket_.async_read_some(asio::buffer(&watch_byte_, 1),
                            [self = shared_from_this()](const boost::system::error_code& ec,
                                                        std::size_t) { self->on_watch(ec); });
}

void session::on_watch(const boost::system::error_code& ec) {
    if (closed_) return;
    if (ec || !drain_input()) {
        close(close_reason::client_gone);
        return;
    }
    do_watch(); // stray bytes after the request are ignored
}

bool session::drain_input() {
    // Bounded per wake-up: a client that keeps sending is read again on the next one (the wait
    // completes at once while bytes are pending), interleaved with everyone else's work.
    std::array<char, 512> sink;
    for (int i = 0; i < 16; ++i) {
        const auto n = ::recv(socket_.native_handle(), sink.data(), sink.size(), MSG_DONTWAIT);
        if (n > 0) continue;
        if (n == 0) return false; // orderly close
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK; // anything else: reset, gone
    }
    return true;
}

void session::close_gracefully(const frame& last, close_reason why) {
    if (closed_ || close_after_flush_) return;
    pending_reason_ = why;
    resume_.reset();
    queue_.push_back(last);
    queued_bytes_ += last->size();
    close_after_flush_ = true;
    if (!write_in_flight()) do_write();
}

void session::close(close_reason why) {
    if (closed_) return;
    closed_ = true;
    auto self = shared_from_this(); // detach drops the shard's reference
    boost::system::error_code ignored;
    socket_.close(ignored);
    discard_queue();
    resume_.reset();
    shard_.detach(*this, why);
}

std::uint32_t session::on_tick(std::uint32_t now_tick, std::int64_t now_unix) {
    const std::uint32_t soon = now_tick + 1;
    if (closed_) return soon;
    const auto& cfg = shard_.config().sse;
    if (write_in_flight()) {
        if (now_tick - write_started_tick_ >= cfg.write_timeout_seconds)
            close(close_reason::write_stalled);
        return soon;
    }
    if (expires_at_unix_ != 0 && now_unix >= expires_at_unix_) {
        close_gracefully(shard_.retry_hint(), close_reason::token_expired);
        return soon;
    }
    if (expires_at_unix_ != 0 && !expiry_noticed_ && !resume_) {
        // expires_at_unix_ is exp + leeway (the close); the notice counts from exp itself, the
        // time the page's token would be refused without the leeway.
        if (auto at = expiry_notice_at(); at && now_unix >= *at) {
            expiry_noticed_ = true;
            shard_counters::bump(shard_.counters().expiry_notices);
            const auto exp = expires_at_unix_ -
                             static_cast<std::int64_t>(shard_.config().auth.jwt.leeway_seconds);
            enqueue(make_event_frame("token-expiring", std::to_string(exp)));
            return soon;
        }
    }
    if (leave_at_tick_ != 0 && now_tick >= leave_at_tick_) {
        close_gracefully(shard_.retry_hint(), close_reason::lifetime_reached);
        return soon;
    }
    if (queue_.empty() && now_tick - last_write_tick_ >= cfg.heartbeat_seconds) {
        shard_counters::bump(shard_.counters().heartbeats);
        enqueue(shard_.heartbeat());
        return soon;
    }
    return next_visit(now_tick, now_unix);
}

std::optional<std::int64_t> session::expiry_notice_at() const {
    const auto& auth = shard_.config().auth;
    if (expires_at_unix_ == 0 || auth.expiry_notice_seconds == 0) return std::nullopt;
    const auto exp = expires_at_unix_ - static_cast<std::int64_t>(auth.jwt.leeway_seconds);
    return exp - static_cast<std::int64_t>(auth.expiry_notice_seconds);
}

std::uint32_t session::next_visit(std::uint32_t now_tick, std::int64_t now_unix) const {
    const std::uint32_t soon = now_tick + 1;
    // Something in motion (a write, a resume, a close being flushed): every tick, as before.
    if (write_in_flight() || !queue_.empty() || resume_ || close_after_flush_) return soon;
    // Ticks are at least a second apart, so a deadline N seconds away in wall time is reached
    // no earlier than N ticks from now.
    auto tick_of = [&](std::int64_t unix_time) -> std::uint32_t {
        if (unix_time <= now_unix) return soon;
        return now_tick +
               static_cast<std::uint32_t>(std::min<std::int64_t>(unix_time - now_unix, 1 << 30));
    };
    std::uint32_t due = last_write_tick_ + shard_.config().sse.heartbeat_seconds;
    if (expires_at_unix_ != 0) {
        due = std::min(due, tick_of(expires_at_unix_));
        if (auto at = expiry_notice_at(); at && !expiry_noticed_) due = std::min(due, tick_of(*at));
    }
    if (leave_at_tick_ != 0) due = std::min(due, leave_at_tick_);
    return std::max(due, soon);
}

} // namespace ssegw

// ---- Redis Cluster history: a position per channel, an id per session ----

namespace ssegw {

frame session::current_position() const {
    if (cursor_) return make_position_frame(cursor_->id());
    return position_;
}

void session::accept_per_session(const routed_event& ev) {
    // Before the history read there is no cursor: the event is owed (it arrived after the
    // stream registered) and is written when the read comes back, through resume_->held.
    if (!cursor_) return;
    // Within a channel positions are totally ordered: what the client has (replayed, or routed
    // twice around a move) is skipped.
    if (!cursor_->advance(channels_.index_of(ev.channel), ev.at)) return;
    enqueue(ev.bytes, cursor_->id_tail());
}

void session::on_cluster_history(std::shared_ptr<const history_read> read,
                                 const resume_request& req) {
    auto& c = shard_.counters();
    if (req.malformed || read->unknown_position) {
        // A single-mode id, or junk: nothing to resume from; every channel starts at its tip.
        shard_counters::bump(c.unknown_positions);
        shard_counters::bump(c.truncated_resumes);
        enqueue(truncated_notice("unknown-position", {}));
    } else if (!read->truncated.empty()) {
        shard_counters::bump(c.truncated_resumes);
        enqueue(truncated_notice("trimmed", read->truncated));
    }
    resume_->asked_at = req.asked_at;
    cursor_ = std::make_unique<composite_position>(channels_.to_vector(), read->channel_from);
    resume_->replay = std::move(read);
    pump_replay();
}

} // namespace ssegw
