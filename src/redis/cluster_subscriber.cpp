#include "ssegw/redis/cluster_subscriber.hpp"

#include "ssegw/core/log_throttle.hpp"
#include "ssegw/core/text.hpp"
#include "ssegw/redis/cluster_slots.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <map>
#include <optional>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace ssegw {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

/// Map reads are spaced at least this much apart: a channel refused again and again (a node
/// that still answers MOVED while the map says it owns the slot) must not spin.
constexpr auto min_refresh_gap = 100ms;
/// While a shard link is down the map is read this often: the cluster promotes a replica in a
/// few seconds and the map is how the gateway finds it.
constexpr auto refresh_while_down = 1s;
/// Spacing of the re-reads after a channel was lost (settle_reads_).
constexpr auto settle_gap = 500ms;

/// "MOVED 3999 127.0.0.1:6381" / "ASK ...": the host and port the reply points at.
std::optional<std::pair<std::string, std::uint16_t>> redirect_target(std::string_view error) {
    const auto last_space = error.rfind(' ');
    if (last_space == std::string_view::npos) return std::nullopt;
    const auto where = error.substr(last_space + 1);
    const auto colon = where.rfind(':');
    if (colon == std::string_view::npos || colon == 0) return std::nullopt;
    std::uint16_t port = 0;
    const auto digits = where.substr(colon + 1);
    if (!parse_whole_number(digits, port) || port == 0) return std::nullopt;
    return std::pair{std::string(where.substr(0, colon)), port};
}

bool is_redirect(const std::string& error) {
    return error.rfind("MOVED ", 0) == 0 || error.rfind("ASK ", 0) == 0;
}

} // namespace

struct cluster_subscriber::impl : std::enable_shared_from_this<impl> {
    struct node {
        redis_endpoint endpoint;
        std::unique_ptr<subscriber> sub;
        std::unique_ptr<command_client> cmd;
    };

    asio::io_context& io_;
    std::vector<redis_endpoint> seeds_;
    cluster_subscriber_options options_;
    subscriber_handlers handlers_;
    std::unique_ptr<command_client> topology_; // where the map is read from
    std::size_t source_ = 0;                   // index into sources() of topology_'s node
    std::uint64_t failures_seen_ = 0;          // topology_->reconnects() when last rotated
    asio::steady_timer refresh_timer_;
    bool refreshing_ = false;
    /// Quick re-reads still due after a channel was lost: nodes learn a new owner at slightly
    /// different times, so the first map read after a move may still show the old one.
    int settle_reads_ = 0;
    bool refresh_wanted_ = false;
    std::chrono::steady_clock::time_point last_refresh_{};
    std::optional<cluster_slot_map> map_;
    std::map<std::string, node> nodes_;                   // by host:port
    std::unordered_set<std::string> desired_;             // channels wanted
    std::unordered_map<std::string, std::string> placed_; // channel -> node address
    std::uint64_t refreshes_ = 0;
    std::uint64_t moves_ = 0;
    std::uint64_t redirects_ = 0;
    std::uint64_t gone_reconnects_ = 0; // of node links since dropped
    bool up_ = false;
    bool stopped_ = false;
    log_throttle map_errors_{std::chrono::seconds(10)};

    impl(asio::io_context& io, std::vector<redis_endpoint> seeds,
         cluster_subscriber_options options, subscriber_handlers handlers)
        : io_(io), seeds_(std::move(seeds)), options_(options), handlers_(std::move(handlers)),
          refresh_timer_(io) {
        if (seeds_.empty()) throw std::invalid_argument("no cluster seed nodes given");
    }

    // ---- lifecycle ------------------------------------------------------------------------

    void start() {
        command_client_options o;
        o.reconnect_min = options_.reconnect_min;
        o.reconnect_max = options_.reconnect_max;
        o.ping_interval = 1s;
        o.log_name = "redis cluster map";
        topology_ = std::make_unique<command_client>(io_, seeds_.front(), o);
        topology_->start();
        arm_refresh(0ms);
    }

    void stop() {
        if (stopped_) return;
        stopped_ = true;
        refresh_timer_.cancel();
        if (topology_) topology_->stop();
        for (auto& [addr, n] : nodes_) {
            n.sub->stop();
            n.cmd->stop();
        }
    }

    // ---- the slot map ---------------------------------------------------------------------

    /// Where the map may be read: the seeds, then every node the last map named.
    std::vector<redis_endpoint> sources() const {
        auto out = seeds_;
        for (const auto& [addr, n] : nodes_) out.push_back(n.endpoint);
        return out;
    }

    void arm_refresh(std::chrono::milliseconds after) {
        refresh_timer_.expires_after(after);
        refresh_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->stopped_) return;
            self->refresh();
        });
    }

    /// Reads the map now (or as soon as the read in flight and the minimum gap allow).
    void refresh() {
        if (stopped_) return;
        if (refreshing_) {
            refresh_wanted_ = true;
            return;
        }
        const auto since = std::chrono::steady_clock::now() - last_refresh_;
        if (since < min_refresh_gap) {
            refresh_wanted_ = true;
            return arm_refresh(
                std::chrono::duration_cast<std::chrono::milliseconds>(min_refresh_gap - since));
        }
        if (!topology_->connected()) {
            // Nothing to ask: once the link has failed, try the next known node; ask again
            // shortly either way.
            if (topology_->reconnects() != failures_seen_) {
                failures_seen_ = topology_->reconnects();
                next_source();
            }
            return arm_refresh(std::chrono::milliseconds(options_.reconnect_min) + 200ms);
        }
        refreshing_ = true;
        refresh_wanted_ = false;
        last_refresh_ = std::chrono::steady_clock::now();
        topology_->execute({"CLUSTER", "SHARDS"},
                           [weak = weak_from_this()](std::optional<reply> r, std::string error) {
                               auto self = weak.lock();
                               if (!self || self->stopped_) return;
                               self->refreshing_ = false;
                               self->on_map_reply(r, error);
                           });
    }

    void next_source() {
        const auto all = sources();
        source_ = (source_ + 1) % all.size();
        topology_->retarget(all[source_], true);
    }

    void on_map_reply(const std::optional<reply>& r, const std::string& error) {
        std::string why = error;
        std::optional<cluster_slot_map> map;
        if (why.empty()) map = cluster_slot_map::from_shards_reply(*r, why);
        if (!map) {
            if (const auto n = map_errors_.hit(std::chrono::steady_clock::now()))
                spdlog::warn("redis cluster: cannot use the slot map from {} ({}; {} times); "
                             "asking another node",
                             topology_->address(), why, n);
            next_source();
            return arm_refresh(std::chrono::milliseconds(options_.reconnect_min) + 200ms);
        }
        apply(std::move(*map));
        if (settle_reads_ > 0) {
            --settle_reads_;
            return arm_refresh(settle_gap);
        }
        arm_refresh(refresh_wanted_ ? min_refresh_gap
                    : up_           ? options_.refresh_interval
                                    : std::chrono::milliseconds(refresh_while_down));
    }

    redis_endpoint endpoint_of(const cluster_node& n) const {
        redis_endpoint ep = seeds_.front(); // credentials and TLS: the same for every node
        ep.host = n.hostname.empty() ? n.ip : n.hostname;
        ep.port = ep.tls && n.tls_port != 0 ? n.tls_port : n.port;
        ep.db = 0;
        return ep;
    }

    void apply(cluster_slot_map map) {
        ++refreshes_;
        std::unordered_set<std::string> owners;
        std::string summary;
        for (const auto& shard : map.shards()) {
            const auto ep = endpoint_of(*shard.primary());
            const auto addr = address_of(ep);
            owners.insert(addr);
            if (!nodes_.contains(addr)) add_node(addr, ep);
            summary += (summary.empty() ? "" : ", ") + addr;
        }
        const bool changed = !map_ || owners.size() != map_->shards().size() ||
                             !std::equal(map.shards().begin(), map.shards().end(),
                                         map_->shards().begin(), [&](auto& a, auto& b) {
                                             return a.ranges == b.ranges &&
                                                    address_of(endpoint_of(*a.primary())) ==
                                                        address_of(endpoint_of(*b.primary()));
                                         });
        if (changed) spdlog::info("redis cluster: {} shards, primaries {}", owners.size(), summary);
        map_ = std::move(map);
        for (const auto& ch : desired_) place(ch);
        for (auto it = nodes_.begin(); it != nodes_.end();) {
            if (owners.contains(it->first)) {
                ++it;
                continue;
            }
            // A node that owns no slots any more (a demoted primary, a removed node): its
            // channels were placed elsewhere above.
            gone_reconnects_ += it->second.sub->reconnects();
            it->second.sub->stop();
            it->second.cmd->stop();
            it = nodes_.erase(it);
        }
        update_state();
    }

    void add_node(const std::string& addr, const redis_endpoint& ep) {
        subscriber_options so;
        so.reconnect_min = options_.reconnect_min;
        so.reconnect_max = options_.reconnect_max;
        so.ping_interval = options_.ping_interval;
        so.sharded = true;
        so.log_name = "redis subscriber " + addr;
        subscriber_handlers h;
        std::weak_ptr<impl> weak = shared_from_this();
        h.on_message = handlers_.on_message;
        h.on_subscribed = handlers_.on_subscribed;
        h.on_burst_end = handlers_.on_burst_end;
        h.on_state = [weak](bool up) {
            auto self = weak.lock();
            if (!self || self->stopped_) return;
            self->update_state();
            if (!up) self->refresh(); // the cluster may be promoting a replica
        };
        h.on_lost = [weak, addr](std::string_view channel, std::string_view why) {
            if (auto self = weak.lock(); self && !self->stopped_)
                self->on_lost(addr, std::string(channel), why);
        };
        command_client_options co;
        co.reconnect_min = options_.reconnect_min;
        co.reconnect_max = options_.reconnect_max;
        co.ping_interval = options_.ping_interval;
        co.log_name = "redis client " + addr;
        node n{ep, std::make_unique<subscriber>(io_, ep, so, std::move(h)),
               std::make_unique<command_client>(io_, ep, co)};
        n.sub->start();
        n.cmd->start();
        nodes_.emplace(addr, std::move(n));
    }

    /// Puts a wanted channel on the link of the shard owning its slot.
    void place(const std::string& channel) {
        if (!map_) return;
        const auto& shard = map_->shards()[map_->shard_of_key(channel)];
        const auto owner = address_of(endpoint_of(*shard.primary()));
        auto it = placed_.find(channel);
        if (it != placed_.end() && it->second == owner) return;
        if (it != placed_.end()) {
            if (auto old = nodes_.find(it->second); old != nodes_.end())
                old->second.sub->unsubscribe(channel);
            ++moves_;
        }
        nodes_.at(owner).sub->subscribe(channel);
        placed_[channel] = owner;
    }

    void on_lost(const std::string& addr, const std::string& channel, std::string_view why) {
        auto it = placed_.find(channel);
        if (it == placed_.end() || it->second != addr) return;
        spdlog::info("redis cluster: {} left {} ({}); reading the slot map", channel, addr, why);
        nodes_.at(addr).sub->unsubscribe(channel);
        placed_.erase(it);
        ++moves_;
        settle_reads_ = 3;
        update_state();
        refresh();
    }

    void update_state() {
        bool up = map_.has_value() && !nodes_.empty();
        for (const auto& [addr, n] : nodes_) up = up && n.sub->connected();
        for (const auto& ch : desired_) up = up && placed_.contains(ch);
        if (up == up_) return;
        up_ = up;
        if (handlers_.on_state) handlers_.on_state(up);
    }

    // ---- channels and commands ------------------------------------------------------------

    void subscribe(const std::string& channel) {
        if (!desired_.insert(channel).second) return;
        place(channel);
    }

    void unsubscribe(const std::string& channel) {
        if (!desired_.erase(channel)) return;
        auto it = placed_.find(channel);
        if (it == placed_.end()) return;
        if (auto n = nodes_.find(it->second); n != nodes_.end())
            n->second.sub->unsubscribe(channel);
        placed_.erase(it);
    }

    void execute(const std::string& key, std::vector<std::string> args,
                 command_client::completion done, bool redirected) {
        if (!map_) {
            asio::post(io_, [done = std::move(done)] { done(std::nullopt, "redis unavailable"); });
            return;
        }
        const auto& shard = map_->shards()[map_->shard_of_key(key)];
        run_on(address_of(endpoint_of(*shard.primary())), key, std::move(args), std::move(done),
               redirected);
    }

    void run_on(const std::string& addr, const std::string& key, std::vector<std::string> args,
                command_client::completion done, bool redirected) {
        auto& n = nodes_.at(addr);
        auto retry_args = args;
        n.cmd->execute(std::move(args),
                       [weak = weak_from_this(), key, retry_args = std::move(retry_args),
                        done = std::move(done),
                        redirected](std::optional<reply> r, std::string error) mutable {
                           auto self = weak.lock();
                           if (!self || self->stopped_ || redirected || !is_redirect(error))
                               return done(std::move(r), std::move(error));
                           // The slot moved (or is moving) since the map was read: once more, where the
                           // reply points, and read the map again for the next ones.
                           ++self->redirects_;
                           self->refresh();
                           const auto target = redirect_target(error);
                           if (!target) return done(std::move(r), std::move(error));
                           redis_endpoint ep = self->seeds_.front();
                           ep.host = target->first;
                           ep.port = target->second;
                           const auto addr = address_of(ep);
                           if (!self->nodes_.contains(addr)) self->add_node(addr, ep);
                           if (error.rfind("ASK ", 0) == 0)
                               self->nodes_.at(addr).cmd->execute({"ASKING"}, [](auto, auto) {});
                           self->run_on(addr, key, std::move(retry_args), std::move(done), true);
                       });
    }
};

cluster_subscriber::cluster_subscriber(asio::io_context& io, std::vector<redis_endpoint> seeds,
                                       cluster_subscriber_options options,
                                       subscriber_handlers handlers)
    : impl_(std::make_shared<impl>(io, std::move(seeds), options, std::move(handlers))) {}

cluster_subscriber::~cluster_subscriber() { impl_->stop(); }

void cluster_subscriber::start() { impl_->start(); }
void cluster_subscriber::stop() { impl_->stop(); }
void cluster_subscriber::subscribe(const std::string& channel) { impl_->subscribe(channel); }
void cluster_subscriber::unsubscribe(const std::string& channel) { impl_->unsubscribe(channel); }
void cluster_subscriber::execute(const std::string& key, std::vector<std::string> args,
                                 command_client::completion done) {
    impl_->execute(key, std::move(args), std::move(done), false);
}
bool cluster_subscriber::connected() const { return impl_->up_; }
bool cluster_subscriber::is_live(const std::string& channel) const {
    auto it = impl_->placed_.find(channel);
    if (it == impl_->placed_.end()) return false;
    auto n = impl_->nodes_.find(it->second);
    return n != impl_->nodes_.end() && n->second.sub->is_live(channel);
}
std::size_t cluster_subscriber::channel_count() const {
    std::size_t total = 0;
    for (const auto& [addr, n] : impl_->nodes_) total += n.sub->channel_count();
    return total;
}
std::uint64_t cluster_subscriber::reconnects() const {
    std::uint64_t total = impl_->gone_reconnects_;
    for (const auto& [addr, n] : impl_->nodes_) total += n.sub->reconnects();
    return total;
}
std::uint64_t cluster_subscriber::protocol_errors() const {
    std::uint64_t total = 0;
    for (const auto& [addr, n] : impl_->nodes_) total += n.sub->protocol_errors();
    return total;
}
std::uint64_t cluster_subscriber::tls_failures() const {
    std::uint64_t total = impl_->topology_ ? impl_->topology_->tls_failures() : 0;
    for (const auto& [addr, n] : impl_->nodes_)
        total += n.sub->tls_failures() + n.cmd->tls_failures();
    return total;
}
std::uint64_t cluster_subscriber::map_refreshes() const { return impl_->refreshes_; }
std::uint64_t cluster_subscriber::moves() const { return impl_->moves_; }
std::uint64_t cluster_subscriber::redirects() const { return impl_->redirects_; }
std::vector<cluster_link_stats> cluster_subscriber::links() const {
    std::vector<cluster_link_stats> out;
    for (const auto& [addr, n] : impl_->nodes_)
        out.push_back({addr, n.sub->connected(), n.sub->channel_count(), n.sub->reconnects()});
    return out;
}

} // namespace ssegw
