#pragma once
// One SSE stream after its handshake: a socket, the channels it joined, where the client stands
// in history, and the frames waiting to be written. Lives on one shard thread for its whole
// life and is touched only there.
//
// Kept small on purpose (see docs/architecture.md): no timer of its own (the shard's one-second
// tick drives heartbeats, stalls and token expiry), no parser or request buffer, an empty queue
// most of the time, and the resume machinery allocated only while a resume is in progress.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ip/tcp.hpp>

#include "ssegw/core/channel_list.hpp"
#include "ssegw/core/history.hpp"
#include "ssegw/shard/close_reason.hpp"
#include "ssegw/shard/composite_position.hpp"
#include "ssegw/shard/shard_socket.hpp"
#include "ssegw/sse/frame.hpp"
#include "ssegw/sse/routed_event.hpp"

namespace ssegw {

class shard;

/// What a starting stream asked for, as far as history goes.
struct resume_request {
    bool had_last_event_id = false; ///< the client sent a Last-Event-ID
    bool malformed = false;         ///< ...which is not a position of ours
    std::uint64_t from_seq = 0;     ///< the position's sequence, when well formed
    std::chrono::steady_clock::time_point asked_at;
};

class session : public std::enable_shared_from_this<session> {
public:
    /// awaits_history: live events are held back until on_history() has written what the
    /// client missed (history enabled); otherwise the stream is live at once.
    /// issued_at_unix: the token's iat (-1 = none); jti_tag: a hash of its jti (0 = none), for
    /// POST /disconnect by jti.
    /// channels.front() must be user_channel(user): the user id is read from it rather than
    /// kept twice (see user()).
    session(shard& owner, shard_socket socket, std::string user, std::vector<std::string> channels,
            std::int64_t expires_at_unix, bool awaits_history, std::int64_t issued_at_unix = -1,
            std::uint64_t jti_tag = 0);
    ~session();

    /// Writes the response head and first bytes, then watches for the client leaving.
    void start(frame head);

    /// An event for one of this session's channels: written in order, history events at most
    /// once (by sequence), held back while a resume is in progress.
    void deliver(const routed_event_ptr& ev);

    /// The history read for this stream: writes the gap signal if any, the missed events, the
    /// client's new position, then what was held back, and goes live.
    void on_history(std::shared_ptr<const history_read> read, const resume_request& req);

    /// Sends `last` (a retry hint), then closes once it is flushed (or at once if stalled).
    void close_gracefully(const frame& last, close_reason why);

    /// Closes now; idempotent.
    void close(close_reason why);

    /// Called by the shard at the tick it last asked for: heartbeat when idle, stall and expiry
    /// checks (with `event: token-expiring` auth.expiry_notice_seconds before the token's exp).
    /// Returns the next tick at which there may be something to do; the shard skips the stream
    /// until then (a visit too early is harmless). A write that starts between visits pulls
    /// the next one forward to its stall deadline (do_write(), shard::visit_by()).
    std::uint32_t on_tick(std::uint32_t now_tick, std::int64_t now_unix);

    /// The user id: the tail of the first channel ("user:<id>"), not a copy of its own, which
    /// would be 32 bytes more per stream (and a heap block for ids past 15 bytes).
    std::string_view user() const noexcept;
    std::uint64_t bytes_written() const noexcept { return bytes_written_; }
    /// Bytes queued or being written: bounded by sse.max_queue_bytes.
    std::uint64_t queued_bytes() const noexcept { return queued_bytes_; }
    std::uint32_t opened_tick() const noexcept { return opened_tick_; }
    const channel_list& channels() const noexcept { return channels_; }
    /// The token's iat (-1 = none) and jti tag (0 = none): what revocations match.
    std::int64_t issued_at() const noexcept { return issued_at_; }
    std::uint64_t jti_tag() const noexcept { return jti_tag_; }
    bool closed() const noexcept { return closed_; }
    /// Closed, or told to go and flushing its last frame.
    bool leaving() const noexcept { return closed_ || close_after_flush_; }

    /// Position in the shard's session list (swap-and-pop removal).
    std::size_t slot = 0;

private:
    struct resume_state;

    /// Queues a frame, and `then` right after it in the same write (a shared body and this
    /// session's id tail: queued one by one, an idle session would send the body at once and
    /// the tail in a second write). A queue that would exceed sse.max_queue_bytes marks a slow
    /// consumer.
    void enqueue(const frame& f, const frame& then = nullptr);
    void accept(const routed_event& ev);
    void pump_replay();
    /// The id a replayed entry is written with, or nullopt when the client already has it
    /// (single mode: its sequence, formatted into id_text; cluster: the session's cursor).
    std::optional<std::string_view> replayed_id(const history_entry& e, std::string& id_text);
    void finish_replay();
    // Redis Cluster history (end of session.cpp): a position per channel, ids per session.
    void on_cluster_history(std::shared_ptr<const history_read> read, const resume_request& req);
    void accept_per_session(const routed_event& ev);
    /// The client's position block: the composite cursor in cluster mode, else position_.
    frame current_position() const;
    /// Ends the resume: records its latency and hands what was held back to accept().
    void release_held();
    bool write_in_flight() const noexcept { return writing_ != 0; }
    void do_write();
    void on_write(const boost::system::error_code& ec, std::size_t bytes);
    /// When `event: token-expiring` is due (unix seconds), if it is ever.
    std::optional<std::int64_t> expiry_notice_at() const;
    /// The earliest tick at which on_tick() may act (see there).
    std::uint32_t next_visit(std::uint32_t now_tick, std::int64_t now_unix) const;
    void do_watch();
    void on_watch(const boost::system::error_code& ec);
    /// Reads what the client sent after its request without blocking: true while the
    /// connection is still open (stray bytes are discarded).
    bool drain_input();
    void drop_as_slow_consumer();
    /// Forgets the frames not yet handed to a write (the write in flight keeps its own).
    void discard_queue();

    shard& shard_;
    shard_socket socket_;
    channel_list channels_; ///< front(): the user's channel
    /// The frames of the write in flight (the first writing_), then those waiting for the next:
    /// one vector, not one for each (24 bytes less per session).
    std::vector<frame> queue_;
    /// Buffer views of the write in flight when it has several frames, only while it is in flight
    /// (8 bytes here instead of a 24-byte vector kept for the stream's life).
    std::unique_ptr<boost::asio::const_buffer[]> gather_;
    /// Position block (make_position_frame) of where the client stands: shared with every
    /// session at the same place (the shard's position_frame(), a routed event's position).
    frame position_;
    std::unique_ptr<resume_state> resume_;       ///< only while history is awaited or replayed
    std::unique_ptr<composite_position> cursor_; ///< cluster history only, from on_history
    std::uint64_t queued_bytes_ = 0;
    std::uint64_t last_seq_ = 0; ///< highest history sequence written (or owed before)
    std::uint64_t bytes_written_ = 0;
    std::int64_t expires_at_unix_ = 0; ///< token exp + leeway; 0 = never
    std::int64_t issued_at_ = -1;      ///< token iat; -1 = none
    std::uint64_t jti_tag_ = 0;        ///< hash of the token's jti; 0 = none
    std::uint32_t epoch_ = 0;          ///< epoch_tag of last_seq_'s epoch
    std::uint32_t opened_tick_ = 0;
    std::uint32_t leave_at_tick_ = 0; ///< sse.max_lifetime_seconds deadline; 0 = never
    std::uint32_t last_write_tick_ = 0;
    std::uint32_t write_started_tick_ = 0;
    close_reason pending_reason_ = close_reason::client_gone;
    std::uint8_t writing_ = 0; ///< frames at the front of queue_ the write in flight owns (<= 64)
    char watch_byte_ = 0;      ///< where do_watch() reads a stray byte to (then drained)
    // One byte for the flags: with the 8-byte gather_ and channels_ and the one queue_ above,
    // the object stays within 216 bytes and its block (with make_shared's counts) within a
    // 240-byte malloc chunk (272 with a vector of names and a second frame vector).
    bool close_after_flush_ : 1 = false;
    bool closed_ : 1 = false;
    bool expiry_noticed_ : 1 = false;
};

} // namespace ssegw
