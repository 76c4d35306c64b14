#include "ssegw/router/router.hpp"

#include <bit>
#include <chrono>
#include <memory>
#include <utility>

#include <spdlog/spdlog.h>

#include "ssegw/broker/broker.hpp"
#include "ssegw/core/channel.hpp"
#include "ssegw/core/envelope.hpp"
#include "ssegw/shard/batch_sink.hpp"
#include "ssegw/sse/frame_body.hpp"

#include <nlohmann/json.hpp>

namespace ssegw {

namespace {

/// Bound on history events held back while catching up; beyond it they are dropped and the
/// catch-up runs again (they are in history, so nothing is lost).
constexpr std::size_t max_held_bytes = 64u << 20;

static_assert(static_cast<int>(drop_reason::too_large) == static_cast<int>(route_drop::too_large));
static_assert(static_cast<int>(drop_reason::bad_retry) == static_cast<int>(route_drop::bad_retry));

} // namespace

router::router(std::size_t max_event_bytes, batch_sink& shards, broker& subscriptions)
    : max_event_bytes_(max_event_bytes), shards_(shards), subscriptions_(subscriptions) {}

void router::on_interest(unsigned shard_id, const std::string& channel, bool held) {
    const std::uint64_t bit = std::uint64_t{1} << shard_id;
    if (held) {
        auto [it, inserted] = masks_.try_emplace(make_key(channel), 0);
        const bool was_empty = it->second == 0;
        it->second |= bit;
        if (was_empty) subscriptions_.want(channel, true);
        return;
    }
    auto it = masks_.find(channel);
    if (it == masks_.end()) return;
    it->second &= ~bit;
    if (it->second != 0) return;
    masks_.erase(it);
    if (auto st = channel_states_.find(channel); st != channel_states_.end()) {
        held_bytes_ -= std::min(held_bytes_, [&] {
            std::size_t n = 0;
            for (const auto& h : st->second.held) n += h.second.size();
            return n;
        }());
        channel_states_.erase(st);
    }
    subscriptions_.want(channel, false);
}

void router::route(std::string_view channel, std::string_view message) {
    if (auto env = parse_envelope(message))
        return route_history(channel, env->position, env->id_text, env->payload);
    const auto kind = kind_of(channel);
    if (!kind) return count_drop(route_drop::bad_channel, channel);
    bump(received_[static_cast<std::size_t>(*kind)]);
    // One lookup per event: the mask is passed on, and no frame is built for a channel no shard
    // holds (pattern mode receives every channel).
    const auto it = masks_.find(channel);
    if (it == masks_.end()) return count_drop(route_drop::no_local_subscriber);
    deliver(channel, it->second, build_frame(message, max_event_bytes_), 0, 0, nullptr);
}

void router::route_history(std::string_view channel, const stream_position& position,
                           std::string_view id_text, std::string_view payload) {
    const auto kind = kind_of(channel);
    if (!kind) return count_drop(route_drop::bad_channel, channel);
    bump(received_[static_cast<std::size_t>(*kind)]);
    if (catching_up_) {
        if (held_overflow_ || held_bytes_ + payload.size() > max_held_bytes) {
            held_overflow_ = true;
            return count_drop(route_drop::catch_up_overflow, channel);
        }
        held_bytes_ += payload.size() + id_text.size() + channel.size();
        held_.push_back(
            {std::string(channel), position, std::string(id_text), std::string(payload)});
        return;
    }
    if (position_ && position.epoch == position_->epoch && position.seq <= position_->seq)
        return count_drop(route_drop::duplicate);
    // The sequence is global: every event of our channels up to here has now been routed.
    advance_to(position);
    const auto it = masks_.find(channel);
    if (it == masks_.end()) return count_drop(route_drop::no_local_subscriber);
    deliver(channel, it->second, build_frame(payload, max_event_bytes_, id_text), position.seq,
            epoch_tag(position.epoch), make_position_frame(id_text));
}

void router::deliver(std::string_view channel, std::uint64_t mask, frame_result built,
                     std::uint64_t seq, std::uint32_t epoch, frame position) {
    if (built.dropped) {
        // frame's drop reasons map one-to-one onto the first route_drop values.
        return count_drop(static_cast<route_drop>(*built.dropped), channel);
    }
    auto ev = std::make_shared<routed_event>();
    ev->channel.assign(channel);
    ev->bytes = std::move(built.bytes);
    ev->position = std::move(position);
    ev->seq = seq;
    ev->epoch = epoch;
    ev->moves_last_event_id = seq == 0 && built.has_id;
    ev->received_at = std::chrono::steady_clock::now();
    routed_event_ptr shared = std::move(ev);
    pending_shards_ |= mask;
    for (; mask != 0; mask &= mask - 1)
        pending_[static_cast<std::size_t>(std::countr_zero(mask))].push_back(shared);
}

void router::flush() {
    // Taken first: anything routed while delivering (shard 0 is delivered in place) starts a
    // fresh batch instead of editing this one.
    auto shards = std::exchange(pending_shards_, 0);
    for (; shards != 0; shards &= shards - 1) {
        const auto id = static_cast<unsigned>(std::countr_zero(shards));
        shards_.deliver(id, std::exchange(pending_[id], {}));
    }
}

void router::advance_to(const stream_position& next) {
    // A new epoch: tell the broker how far the old one went here, so a loss in a failover
    // (this process routed events the new primary never got) is recorded for resumes.
    if (position_ && next.epoch != position_->epoch)
        subscriptions_.epoch_changed(*position_, next.epoch);
    position_ = next;
}

void router::begin_catch_up() { catching_up_ = true; }

bool router::finish_catch_up(const history_read& read) {
    catching_up_ = false;
    for (const auto& e : read.entries) {
        const auto id = e.position.format();
        const auto before = position_ ? position_->seq : 0;
        route_history(e.channel, e.position, id, e.payload);
        if (position_ && position_->seq > before) bump(caught_up_);
    }
    // Every event of our channels up to the tip was in the read.
    if (!position_ || position_->epoch != read.tip.epoch || position_->seq < read.tip.seq)
        advance_to(read.tip);
    auto held = std::move(held_);
    held_.clear();
    held_bytes_ = 0;
    const bool complete = !held_overflow_;
    held_overflow_ = false;
    if (!complete) {
        // Some held events were dropped; a fresh read from the new position recovers them, and
        // what is still held is older than that read's tip, so it goes with the drop.
        catching_up_ = true;
        return false;
    }
    for (auto& h : held) route_history(h.channel, h.position, h.id_text, h.payload);
    return true;
}

void router::adopt_position(const stream_position& tip) {
    if (!position_ || position_->epoch != tip.epoch) advance_to(tip);
}

std::vector<std::string> router::wanted_channels() const {
    std::vector<std::string> out;
    out.reserve(masks_.size());
    for (const auto& [name, mask] : masks_) out.emplace_back(key_view(name));
    return out;
}

void router::route_channel_history(std::string_view channel, const channel_position& at,
                                   std::string_view payload) {
    const auto kind = kind_of(channel);
    if (!kind) return count_drop(route_drop::bad_channel, channel);
    bump(received_[static_cast<std::size_t>(*kind)]);
    const auto it = masks_.find(channel);
    if (it == masks_.end()) return count_drop(route_drop::no_local_subscriber);
    auto found = channel_states_.find(channel); // no key string built per event
    if (found == channel_states_.end())
        found = channel_states_.try_emplace(make_key(channel)).first;
    auto& st = found->second;
    if (st.holding) {
        if (st.overflow || held_bytes_ + payload.size() > max_held_bytes) {
            // Dropped here, read again: the catch-up reruns from where routing got to.
            st.overflow = true;
            return count_drop(route_drop::catch_up_overflow, channel);
        }
        held_bytes_ += payload.size();
        st.held.emplace_back(at, std::string(payload));
        return;
    }
    // Positions of one channel are totally ordered: at most once, and never backwards.
    if (st.known && at <= st.last) return count_drop(route_drop::duplicate);
    st.last = at;
    st.known = true;
    deliver_channel_history(channel, it->second, at, payload);
}

void router::deliver_channel_history(std::string_view channel, std::uint64_t mask,
                                     const channel_position& at, std::string_view payload) {
    auto built = build_frame_body(payload, max_event_bytes_);
    if (built.dropped) return count_drop(static_cast<route_drop>(*built.dropped), channel);
    auto ev = std::make_shared<routed_event>();
    ev->channel.assign(channel);
    ev->bytes = std::move(built.bytes);
    ev->per_session_id = true;
    ev->at = at;
    ev->received_at = std::chrono::steady_clock::now();
    routed_event_ptr shared = std::move(ev);
    pending_shards_ |= mask;
    for (; mask != 0; mask &= mask - 1)
        pending_[static_cast<std::size_t>(std::countr_zero(mask))].push_back(shared);
}

std::optional<channel_position> router::begin_channel_catch_up(std::string_view channel) {
    if (masks_.find(channel) == masks_.end()) return std::nullopt;
    auto& st = channel_states_.try_emplace(make_key(channel)).first->second;
    st.holding = true;
    if (!st.known) return std::nullopt;
    return st.last;
}

void router::release_held(std::string_view channel, channel_state& st) {
    auto held = std::move(st.held);
    st.held.clear();
    st.holding = false;
    for (const auto& h : held) held_bytes_ -= std::min(held_bytes_, h.second.size());
    for (const auto& h : held) route_channel_history(channel, h.first, h.second);
}

void router::finish_channel_catch_up(std::string_view channel,
                                     const std::vector<history_entry>& entries,
                                     const channel_position& tip, bool truncated) {
    const auto it = channel_states_.find(channel);
    if (it == channel_states_.end()) return; // nobody holds it any more
    auto& st = it->second;
    st.holding = false;
    if (!st.known) {
        // First confirmation: only where history stands was read. Sessions filter by their own
        // cursors, so held events go out whatever their position; routing continues from the
        // highest of them and the tip.
        st.last = tip;
        st.known = true;
        auto held = std::move(st.held);
        st.held.clear();
        const auto m = masks_.find(channel);
        for (const auto& h : held) {
            held_bytes_ -= std::min(held_bytes_, h.second.size());
            if (m != masks_.end()) deliver_channel_history(channel, m->second, h.first, h.second);
            st.last = std::max(st.last, h.first);
        }
    } else {
        if (truncated) {
            // Events after what was routed are gone (a failover lost them before they were
            // replicated): every stream of the channel is told before what follows.
            const auto m = masks_.find(channel);
            nlohmann::json data = {{"reason", "failover"}, {"channels", {channel}}};
            if (m != masks_.end())
                deliver(channel, m->second,
                        {make_event_frame(
                             "history-truncated",
                             data.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)),
                         std::nullopt, false},
                        0, 0, nullptr);
        }
        for (const auto& e : entries) {
            const auto before = st.last;
            route_channel_history(channel, e.at, e.payload);
            if (st.last > before) bump(caught_up_);
        }
        release_held(channel, st);
    }
    if (st.overflow) {
        // Something was dropped while held: it is in history, read it again from here.
        st.overflow = false;
        spdlog::warn("catch-up of {} overflowed; events after it come with the next one",
                     channel.substr(0, 80));
    }
    flush();
}

void router::abandon_channel_catch_up(std::string_view channel) {
    const auto it = channel_states_.find(channel);
    if (it == channel_states_.end()) return;
    release_held(channel, it->second);
    flush();
}

void router::count_drop(route_drop why, std::string_view channel) noexcept {
    const auto i = static_cast<std::size_t>(why);
    bump(dropped_[i]);
    // Routine drops (nobody here holds the channel, duplicates after a catch-up) stay quiet.
    if (why == route_drop::no_local_subscriber || why == route_drop::duplicate) return;
    if (const auto n = drop_log_[i].hit(std::chrono::steady_clock::now()); n != 0) {
        try {
            spdlog::warn("dropped {} event(s) in the last interval: {} (last on channel \"{}\")", n,
                         route_drop_names[i], channel.substr(0, 80));
        } catch (...) {}
    }
}

} // namespace ssegw
