#include "ssegw/redis/subscriber.hpp"

#include "ssegw/redis/connection.hpp"
#include "ssegw/redis/resp.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "ssegw/core/string_map.hpp"

namespace ssegw {

namespace asio = boost::asio;

namespace {

/// Names per SUBSCRIBE/UNSUBSCRIBE command: keeps single commands (and Redis' work per command)
/// small while still batching.
constexpr std::size_t names_per_command = 512;

// Desired vs. server state of one kind of subscription (channels or patterns), per name:
//  desired:   what the owner wants, survives reconnects
//  expected:  what the server will hold once every command sent on this link is processed
//  confirmed: what the server has confirmed on this link
//  leaving:   UNSUBSCRIBEs sent and not yet confirmed; while one is in flight, "confirmed" may
//             describe the subscription being dropped, not a newer one
//  dirty:     names whose desire changed since the last flush (may repeat; flush settles each
//             name once, by its state)
// One flat map entry per name rather than one node per name in each of three sets: a process
// subscribes to a channel per user it holds, so this is per-stream memory. Three
// std::unordered_sets cost ~210 bytes per channel (a 64-byte node and a bucket slot in each);
// the flat map ~50 (a 32-byte slot at its load factor). See docs/benchmarks.md, "Memory per
// idle stream".
struct name_set {
    std::string_view subscribe_cmd;
    std::string_view unsubscribe_cmd;
    /// Names per command: SSUBSCRIBE takes only names of one slot, so sharded sets send one.
    std::size_t per_command = names_per_command;

    enum flag : std::uint8_t { desired = 1, expected = 2, confirmed = 4 };
    struct state {
        std::uint8_t flags = 0;
        std::uint32_t leaving = 0;
    };
    string_map<state> names;
    std::size_t confirmed_count = 0;
    std::vector<std::string> dirty;

    bool has(std::string_view name, flag f) const {
        auto it = names.find(name);
        return it != names.end() && (it->second.flags & f) != 0;
    }
    std::uint32_t leaving(std::string_view name) const {
        auto it = names.find(name);
        return it == names.end() ? 0 : it->second.leaving;
    }
    /// Sets or clears one flag; an entry with nothing left is removed.
    void set(std::string_view name, flag f, bool on) {
        auto it = names.find(name);
        if (it == names.end()) {
            if (!on) return;
            it = names.try_emplace(make_key(name)).first;
        }
        auto& st = it->second;
        if (f == confirmed && on != ((st.flags & confirmed) != 0)) {
            if (on)
                ++confirmed_count;
            else
                --confirmed_count;
        }
        st.flags = on ? (st.flags | f) : (st.flags & ~f);
        if (st.flags == 0 && st.leaving == 0) names.erase(it);
    }
    void add_leaving(std::string_view name) {
        auto it = names.find(name);
        if (it == names.end()) it = names.try_emplace(make_key(name)).first;
        ++it->second.leaving;
    }
    /// One UNSUBSCRIBE confirmed (or all of them forgotten, when `all`).
    void drop_leaving(std::string_view name, bool all = false) {
        auto it = names.find(name);
        if (it == names.end() || it->second.leaving == 0) return;
        it->second.leaving = all ? 0 : it->second.leaving - 1;
        if (it->second.flags == 0 && it->second.leaving == 0) names.erase(it);
    }
    void mark_dirty(std::string_view name) { dirty.emplace_back(name); }
    /// The link is gone: the server holds nothing of ours any more.
    void on_link_reset() {
        for (auto& [name, st] : names) {
            st.flags &= desired;
            st.leaving = 0;
        }
        boost::unordered::erase_if(names, [](const auto& kv) { return kv.second.flags == 0; });
        confirmed_count = 0;
        std::vector<std::string>().swap(dirty);
    }
};

void append_commands(std::string& out, std::string_view command,
                     const std::vector<std::string_view>& names, std::size_t per_command) {
    std::vector<std::string_view> args;
    for (std::size_t i = 0; i < names.size(); i += per_command) {
        std::size_t end = std::min(names.size(), i + per_command);
        args.clear();
        args.push_back(command);
        args.insert(args.end(), names.begin() + static_cast<std::ptrdiff_t>(i),
                    names.begin() + static_cast<std::ptrdiff_t>(end));
        out += encode_command(args);
    }
}

// User callbacks must not unwind into Asio: log and carry on.
template <class F, class... Args>
void invoke_guarded(const F& f, const char* what, Args&&... args) noexcept {
    if (!f) return;
    try {
        f(std::forward<Args>(args)...);
    } catch (const std::exception& e) {
        spdlog::error("redis subscriber: {} handler threw: {}", what, e.what());
    } catch (...) {
        spdlog::error("redis subscriber: {} handler threw", what);
    }
}

} // namespace

struct subscriber::impl : connection_owner, std::enable_shared_from_this<impl> {
    asio::io_context& io_;
    subscriber_handlers handlers_;
    std::optional<connection> link_; // set right after construction: it needs our weak_ptr
    bool flush_posted_ = false;
    name_set channels_{"SUBSCRIBE", "UNSUBSCRIBE", names_per_command, {}, 0, {}};
    name_set patterns_{"PSUBSCRIBE", "PUNSUBSCRIBE", names_per_command, {}, 0, {}};

    /// Sharded mode: the (S)SUBSCRIBE/SUNSUBSCRIBE commands sent on this link and not yet
    /// answered, one name each, oldest first; an error reply or a confirmation answers the
    /// oldest, and a sunsubscribe that answers none was pushed by the server.
    struct sent_command {
        bool subscribe;
        std::string name;
    };
    std::deque<sent_command> sent_;
    subscriber_options options_;

    impl(asio::io_context& io, subscriber_handlers handlers, subscriber_options options)
        : io_(io), handlers_(std::move(handlers)), options_(std::move(options)) {
        if (options_.sharded) {
            channels_.subscribe_cmd = "SSUBSCRIBE";
            channels_.unsubscribe_cmd = "SUNSUBSCRIBE";
            channels_.per_command = 1;
        }
    }

    static connection_options link_options(const subscriber_options& o) {
        connection_options c;
        c.reconnect_min = o.reconnect_min;
        c.reconnect_max = o.reconnect_max;
        c.ping_interval = o.ping_interval;
        c.select_db = false; // pub/sub channels are not per database
        c.require_primary = o.require_primary;
        c.log_name = o.log_name;
        c.stall_reason = "no reply to PING";
        return c;
    }

    void stop() {
        link_->stop();
        reset_link_state();
    }

    void reset_link_state() {
        channels_.on_link_reset();
        patterns_.on_link_reset();
        sent_.clear();
    }

    // ---- connection_owner -----------------------------------------------------------------

    void on_open() override {
        std::string out;
        for (name_set* set : {&channels_, &patterns_}) {
            std::vector<std::string_view> names;
            for (auto& [name, st] : set->names) {
                if ((st.flags & name_set::desired) == 0) continue;
                names.push_back(key_view(name));
                st.flags |= name_set::expected;
            }
            append_commands(out, set->subscribe_cmd, names, set->per_command);
            if (options_.sharded)
                for (auto n : names) sent_.push_back({true, std::string(n)});
            std::vector<std::string>().swap(set->dirty);
        }
        // The connection's barrier PING follows: on_up() means all of these are confirmed.
        if (!out.empty()) link_->send(std::move(out));
    }

    void on_up() override { invoke_guarded(handlers_.on_state, "on_state", true); }

    void on_burst_end() override {
        if (!link_->stopped()) invoke_guarded(handlers_.on_burst_end, "on_burst_end");
    }

    // PING every period, answered or not: silence for two periods means a dead link.
    void on_tick() override { link_->send(encode_command({"PING"})); }

    void on_down(const std::string&, bool was_up) override {
        reset_link_state();
        if (was_up) invoke_guarded(handlers_.on_state, "on_state", false);
    }

    void on_reply(reply&& r) override {
        using kind = reply::kind;
        if (r.type == kind::error) {
            // Sharded: MOVED, CLUSTERDOWN ... answer one channel's command, not the link.
            if (!options_.sharded || sent_.empty()) return link_->fail("redis error: " + r.str);
            auto failed = std::move(sent_.front());
            sent_.pop_front();
            channels_.set(failed.name, name_set::expected, false);
            channels_.set(failed.name, name_set::confirmed, false);
            channels_.drop_leaving(failed.name, true);
            invoke_guarded(handlers_.on_lost, "on_lost", std::string_view(failed.name),
                           std::string_view(r.str));
            return;
        }
        // Status replies (PONG outside subscribed mode) need nothing more.
        if (r.type != kind::array || r.elements.empty() || r.elements[0].type != kind::string)
            return;
        const std::string& what = r.elements[0].str;
        const auto& el = r.elements;
        auto is_str = [&](std::size_t i) { return el[i].type == kind::string; };
        if (what == "message" || what == "smessage") {
            if (el.size() != 3 || !is_str(1) || !is_str(2))
                return link_->fail_protocol("malformed message");
            invoke_guarded(handlers_.on_message, "on_message", std::string_view(el[1].str),
                           std::string_view(el[2].str));
        } else if (what == "pmessage") {
            if (el.size() != 4 || !is_str(2) || !is_str(3))
                return link_->fail_protocol("malformed pmessage");
            invoke_guarded(handlers_.on_message, "on_message", std::string_view(el[2].str),
                           std::string_view(el[3].str));
        } else if (what == "subscribe" || what == "unsubscribe" || what == "psubscribe" ||
                   what == "punsubscribe" || what == "ssubscribe" || what == "sunsubscribe") {
            if (el.size() != 3 || !is_str(1)) return link_->fail_protocol("malformed " + what);
            bool pattern = what[0] == 'p';
            bool added = what == "subscribe" || what == "psubscribe" || what == "ssubscribe";
            const bool sharded_reply = what == "ssubscribe" || what == "sunsubscribe";
            if (sharded_reply && !answers_oldest(added, el[1].str)) {
                // The server dropped the channel itself: its slot moved to another shard (end of
                // a migration, a failover). The owner re-routes it.
                channels_.set(el[1].str, name_set::expected, false);
                channels_.set(el[1].str, name_set::confirmed, false);
                invoke_guarded(handlers_.on_lost, "on_lost", std::string_view(el[1].str),
                               std::string_view("the server unsubscribed it (slot moved)"));
                return;
            }
            on_confirm(pattern ? patterns_ : channels_, el[1].str, added);
            if (added && !pattern)
                invoke_guarded(handlers_.on_subscribed, "on_subscribed",
                               std::string_view(el[1].str));
        }
        // Anything else ("pong", future push kinds) is ignored on purpose.
    }

    /// Sharded: whether a confirmation answers the oldest command sent (and pops it).
    bool answers_oldest(bool added, const std::string& name) {
        if (sent_.empty() || sent_.front().subscribe != added || sent_.front().name != name)
            return false;
        sent_.pop_front();
        return true;
    }

    void on_confirm(name_set& set, const std::string& name, bool added) {
        if (added) {
            set.set(name, name_set::confirmed, true);
        } else {
            set.set(name, name_set::confirmed, false);
            set.drop_leaving(name);
        }
        // A name dropped while its SUBSCRIBE was in flight could not be unsubscribed then (only
        // confirmed names are); now it can.
        const bool desired = set.has(name, name_set::desired);
        if (desired != set.has(name, name_set::expected) || (added && !desired)) {
            set.mark_dirty(name);
            schedule_flush();
        }
    }

    // ---- desired-set changes --------------------------------------------------------------

    void change(name_set& set, const std::string& name, bool want) {
        if (link_->stopped()) return;
        set.set(name, name_set::desired, want);
        // While no link is open the next connect sends the whole desired set anyway.
        if (!link_->open()) return;
        set.mark_dirty(name);
        schedule_flush();
    }

    void schedule_flush() {
        if (flush_posted_) return;
        flush_posted_ = true;
        asio::post(io_, [self = shared_from_this()] {
            self->flush_posted_ = false;
            try {
                self->flush();
            } catch (const std::exception& e) {
                self->link_->fail(std::string("internal error: ") + e.what());
            }
        });
    }

    void flush() {
        if (!link_->open()) {
            std::vector<std::string>().swap(channels_.dirty);
            std::vector<std::string>().swap(patterns_.dirty);
            return;
        }
        std::string out;
        for (name_set* set : {&channels_, &patterns_}) {
            std::vector<std::string_view> add, remove;
            // Each name's state is updated as it is decided, so a name listed twice in `dirty`
            // is sent at most once.
            for (const auto& name : set->dirty) {
                bool want = set->has(name, name_set::desired);
                bool will_have = set->has(name, name_set::expected);
                if (want && !will_have) {
                    add.push_back(name);
                    set->set(name, name_set::expected, true);
                } else if (!want && will_have && set->has(name, name_set::confirmed)) {
                    remove.push_back(name);
                    set->set(name, name_set::expected, false);
                    set->add_leaving(name);
                }
                // !want && will_have && !confirmed: SUBSCRIBE still in flight; its confirmation
                // marks the name dirty again.
            }
            append_commands(out, set->subscribe_cmd, add, set->per_command);
            append_commands(out, set->unsubscribe_cmd, remove, set->per_command);
            if (options_.sharded && set == &channels_) {
                for (auto n : add) sent_.push_back({true, std::string(n)});
                for (auto n : remove) sent_.push_back({false, std::string(n)});
            }
            // The views above point into `dirty`: released after encoding (not just cleared, so
            // a burst of 100,000 changes leaves no capacity behind).
            std::vector<std::string>().swap(set->dirty);
        }
        if (!out.empty()) link_->send(std::move(out));
    }
};

subscriber::subscriber(asio::io_context& io, redis_endpoint endpoint, subscriber_options options,
                       subscriber_handlers handlers)
    : impl_(std::make_shared<impl>(io, std::move(handlers), options)) {
    impl_->link_.emplace(io, std::move(endpoint), impl::link_options(options), impl_);
}

subscriber::~subscriber() { impl_->stop(); }

void subscriber::start() { impl_->link_->start(); }
void subscriber::stop() { impl_->stop(); }
void subscriber::retarget(redis_endpoint endpoint, bool now) {
    impl_->link_->retarget(std::move(endpoint), now);
}
std::string subscriber::address() const { return impl_->link_->address(); }
void subscriber::subscribe(const std::string& channel) {
    impl_->change(impl_->channels_, channel, true);
}
void subscriber::unsubscribe(const std::string& channel) {
    impl_->change(impl_->channels_, channel, false);
}
void subscriber::psubscribe(const std::string& pattern) {
    impl_->change(impl_->patterns_, pattern, true);
}
bool subscriber::connected() const { return impl_->link_->up(); }
std::size_t subscriber::channel_count() const { return impl_->channels_.confirmed_count; }
bool subscriber::is_live(const std::string& channel) const {
    const auto& set = impl_->channels_;
    return impl_->link_->open() && set.has(channel, name_set::desired) &&
           set.has(channel, name_set::expected) && set.has(channel, name_set::confirmed) &&
           set.leaving(channel) == 0;
}
std::uint64_t subscriber::reconnects() const { return impl_->link_->reconnects(); }
std::uint64_t subscriber::protocol_errors() const { return impl_->link_->protocol_errors(); }
std::uint64_t subscriber::tls_failures() const { return impl_->link_->tls_failures(); }
std::string subscriber::last_error() const { return impl_->link_->last_error(); }

} // namespace ssegw
