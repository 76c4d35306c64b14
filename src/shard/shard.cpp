#include "ssegw/shard/shard.hpp"

#include <chrono>
#include <ctime>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "ssegw/core/channel.hpp"
#include "ssegw/shard/session.hpp"
#include "ssegw/shard/shard_set.hpp"

namespace ssegw {

namespace asio = boost::asio;

shard::shard(unsigned id, shard_set& set)
    : id_(id), set_(set), cfg_(set.config()), ioc_(1), tick_timer_(ioc_), drain_timer_(ioc_),
      presence_(ioc_, std::chrono::milliseconds(cfg_.presence.flush_ms),
                cfg_.presence.lifecycle_stream,
                [this](presence_report r) { set_.presence_changed(id_, std::move(r)); }),
      heartbeat_(make_comment_frame("")),
      rng_state_(
          0x9E3779B97F4A7C15ull * (id + 1) ^
          static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())) {
}

shard::~shard() {
    stop();
    join();
}

void shard::start() {
    schedule_tick();
    thread_ = std::thread([this] { run_loop(); });
}

void shard::run_here() {
    schedule_tick();
    run_loop();
}

void shard::run_loop() {
    // A session handler that throws is a bug; log it and keep the shard serving the others.
    for (;;) {
        try {
            ioc_.run();
            return;
        } catch (const std::exception& e) {
            spdlog::error("shard {}: unexpected exception: {}", id_, e.what());
        }
    }
}

void shard::stop() { ioc_.stop(); }

void shard::join() {
    if (thread_.joinable()) thread_.join();
}

void shard::reserve_slot() noexcept {
    load_.fetch_add(1, std::memory_order_relaxed);
    set_.connections_total().fetch_add(1, std::memory_order_relaxed);
}

void shard::handshake_failed(close_reason why) noexcept {
    heap_trim_.handshake_done();
    load_.fetch_sub(1, std::memory_order_relaxed);
    set_.connections_total().fetch_sub(1, std::memory_order_relaxed);
    counters_.count_close(why);
}

void shard::attach(const std::shared_ptr<session>& s, frame head) {
    heap_trim_.handshake_done();
    s->slot = sessions_.size();
    sessions_.push_back(s);
    visit_at_.push_back(tick_count_ + 1);
    for (const auto& ch : s->channels())
        if (registry_.add(ch, s.get())) set_.interest_changed(id_, ch, true);
    shard_counters::bump(counters_.opened);
    if (cfg_.presence.enabled) presence_.opened(s->user(), s->channels());
    counters_.connections.store(static_cast<std::int64_t>(sessions_.size()),
                                std::memory_order_relaxed);
    s->start(std::move(head));
    if (spdlog::should_log(spdlog::level::debug))
        spdlog::debug("stream opened: user={} shard={} channels={}", s->user(), id_,
                      s->channels().size());
}

void shard::detach(session& s, close_reason why) {
    for (const auto& ch : s.channels())
        if (registry_.remove(ch, &s)) set_.interest_changed(id_, ch, false);
    set_.users().release(s.user());
    if (cfg_.presence.enabled)
        presence_.closed(s.user(), s.channels(), why, tick_count_ - s.opened_tick());
    const auto slot = s.slot;
    if (slot < sessions_.size() && sessions_[slot].get() == &s) {
        sessions_[slot] = std::move(sessions_.back());
        sessions_[slot]->slot = slot;
        sessions_.pop_back();
        visit_at_[slot] = visit_at_.back();
        visit_at_.pop_back();
    }
    load_.fetch_sub(1, std::memory_order_relaxed);
    set_.connections_total().fetch_sub(1, std::memory_order_relaxed);
    counters_.count_close(why);
    counters_.connections.store(static_cast<std::int64_t>(sessions_.size()),
                                std::memory_order_relaxed);
    if (spdlog::should_log(spdlog::level::debug))
        spdlog::debug("stream closed: user={} shard={} duration={}s bytes={} reason={}", s.user(),
                      id_, tick_count_ - s.opened_tick(), s.bytes_written(),
                      close_reason_names[static_cast<std::size_t>(why)]);
}

void shard::deliver(const std::vector<routed_event_ptr>& batch) {
    // One clock read per batch: its events are handed over within microseconds of each other.
    const auto now = std::chrono::steady_clock::now();
    for (const auto& ev : batch) {
        shard_counters::bump(counters_.events_routed);
        const auto* list = registry_.find(ev->channel);
        if (!list) continue; // the last session left after the router posted this
        for (session* s : *list) s->deliver(ev);
        shard_counters::bump(counters_.frames_delivered, list->size());
        counters_.fanout.observe(list->size());
        const auto waited = now - ev->received_at;
        counters_.delivery_latency.observe_us(static_cast<std::uint64_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(waited).count()));
    }
}

void shard::visit_by(const session& s, std::uint32_t tick) noexcept {
    const auto slot = s.slot;
    if (slot < sessions_.size() && sessions_[slot].get() == &s && visit_at_[slot] > tick)
        visit_at_[slot] = tick;
}

std::uint32_t shard::jitter(std::uint32_t bound) noexcept {
    if (bound == 0) return 0;
    // xorshift64: a jitter source private to this thread.
    rng_state_ ^= rng_state_ << 13;
    rng_state_ ^= rng_state_ >> 7;
    rng_state_ ^= rng_state_ << 17;
    return static_cast<std::uint32_t>(rng_state_ % bound);
}

frame shard::position_frame(const stream_position& at) {
    auto text = at.format();
    if (!position_frame_ || text != position_text_) {
        position_frame_ = make_position_frame(text);
        position_text_ = std::move(text);
    }
    return position_frame_;
}

frame shard::retry_hint() {
    const auto base = cfg_.sse.retry_ms;
    return make_retry_frame(base + jitter(base));
}

void shard::schedule_tick() {
    tick_timer_.expires_after(std::chrono::seconds(1));
    tick_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) on_tick();
    });
}

void shard::on_tick() {
    ++tick_count_;
    const auto now_unix = static_cast<std::int64_t>(std::time(nullptr));
    // Ended revocations are swept once a minute: a record refuses nothing after its end anyway.
    if (tick_count_ % 60 == 0 && revocations_.size() != 0) {
        revocations_.expire(now_unix);
        counters_.revocations.store(static_cast<std::int64_t>(revocations_.size()),
                                    std::memory_order_relaxed);
    }
    if (spdlog::should_log(spdlog::level::debug)) {
        const auto t0 = std::chrono::steady_clock::now();
        if (heap_trim_.on_tick(tick_count_))
            spdlog::debug("shard {}: heap trimmed after a wave of handshakes in {} us", id_,
                          std::chrono::duration_cast<std::chrono::microseconds>(
                              std::chrono::steady_clock::now() - t0)
                              .count());
    } else {
        heap_trim_.on_tick(tick_count_);
    }
    // Backwards: a session closing here swap-pops the last element into its slot, which has
    // already been visited. No shared_ptr copy per session (two atomic operations on every
    // stream, every second): a session that closes in on_tick() holds itself (close() takes
    // shared_from_this() before detach), so it outlives the call.
    for (std::size_t i = sessions_.size(); i-- > 0;) {
        if (i >= sessions_.size() || visit_at_[i] > tick_count_) continue;
        session* s = sessions_[i].get();
        const auto next = s->on_tick(tick_count_, now_unix);
        // A session that closed has left its slot to another one (already visited).
        if (i < sessions_.size() && sessions_[i].get() == s) visit_at_[i] = next;
    }
    schedule_tick();
}

void shard::apply_control(const control_message& m, bool replayed, std::int64_t now_unix) {
    if (!revocations_.add(m)) shard_counters::bump(counters_.revocations_full);
    counters_.revocations.store(static_cast<std::int64_t>(revocations_.size()),
                                std::memory_order_relaxed);
    const std::uint64_t tag = m.jti.empty() ? 0 : jti_tag_of(m.jti);
    auto named = [&](const session& s) {
        if (!m.user.empty() && s.user() != m.user) return false;
        if (tag != 0) return s.jti_tag() == tag; // that token's streams
        if (!replayed) return true;              // every stream of the user
        // Read back later: only streams opened with tokens the revocation refuses, not ones
        // opened since with fresh tokens.
        return m.revoke &&
               revocations_.refuses(s.user(),
                                    s.issued_at() < 0 ? std::nullopt : std::optional(s.issued_at()),
                                    {}, now_unix);
    };
    // Collected first: closing edits neither list now (the streams leave once their last
    // frame is written), but the registry list is not ours to walk while anything changes.
    std::vector<std::shared_ptr<session>> hits;
    if (!m.user.empty()) {
        if (const auto* list = registry_.find(user_channel(m.user)))
            for (session* s : *list)
                if (named(*s)) hits.push_back(s->shared_from_this());
    } else {
        for (const auto& s : sessions_)
            if (named(*s)) hits.push_back(s);
    }
    if (hits.empty()) return;
    const auto reason = m.revokes() ? close_reason::revoked : close_reason::disconnected;
    const auto notice = make_event_frame("disconnect", m.reason);
    for (const auto& s : hits) {
        if (s->leaving()) continue;
        // One frame: the event, then where to come back (a revoked client's comeback is
        // refused, which is what ends its EventSource).
        auto last = std::make_shared<const std::string>(*notice + *retry_hint());
        s->close_gracefully(last, reason);
    }
}

void shard::drain(std::chrono::milliseconds window) {
    constexpr auto step = std::chrono::milliseconds(100);
    const auto steps = std::max<std::int64_t>(1, window / step);
    const auto per_step =
        std::max<std::size_t>(1, (sessions_.size() + steps - 1) / static_cast<std::size_t>(steps));
    drain_step(per_step, std::chrono::steady_clock::now() + window);
}

void shard::drain_step(std::size_t per_step, std::chrono::steady_clock::time_point until) {
    constexpr auto step = std::chrono::milliseconds(100);
    // Past the window: everyone left is told now (a late attach, or rounding).
    const bool last = std::chrono::steady_clock::now() + step / 2 >= until;
    // Sessions already told to leave stay in the list until their retry hint is flushed, so
    // walk past them instead of re-telling.
    std::size_t told = 0;
    for (std::size_t i = sessions_.size(); i-- > 0 && (last || told < per_step);) {
        if (i >= sessions_.size()) continue;
        auto s = sessions_[i];
        if (s->leaving()) continue;
        s->close_gracefully(retry_hint(), close_reason::drained);
        ++told;
    }
    if (last) return;
    // Keep stepping to the end of the window even when nobody is left: the process keeps
    // serving "come back later" that long, and a stream may still attach meanwhile.
    drain_timer_.expires_after(step);
    drain_timer_.async_wait([this, per_step, until](const boost::system::error_code& ec) {
        if (!ec) drain_step(per_step, until);
    });
}

} // namespace ssegw
