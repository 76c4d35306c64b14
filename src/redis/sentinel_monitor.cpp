#include "ssegw/redis/sentinel_monitor.hpp"

#include "ssegw/core/log_throttle.hpp"
#include "ssegw/core/text.hpp"
#include "ssegw/redis/command_client.hpp"
#include "ssegw/redis/subscriber.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <optional>
#include <stdexcept>

namespace ssegw {

namespace asio = boost::asio;

namespace {

/// The channel on which a sentinel announces a finished failover:
/// "<master-name> <old-ip> <old-port> <new-ip> <new-port>".
constexpr const char* switch_channel = "+switch-master";

/// Polls without an answer before the next sentinel is tried.
constexpr int patience = 3;

std::optional<std::uint16_t> parse_port(std::string_view text) {
    std::uint16_t port = 0;
    if (!parse_whole_number(text, port) || port == 0) return std::nullopt;
    return port;
}

} // namespace

struct sentinel_monitor::impl : std::enable_shared_from_this<impl> {
    asio::io_context& io_;
    sentinel_monitor_options options_;
    primary_handler on_primary_;
    std::size_t current_ = 0; // index of the sentinel asked
    std::unique_ptr<command_client> query_;
    std::unique_ptr<subscriber> watch_;
    asio::steady_timer poll_timer_;
    std::string primary_host_;
    std::uint16_t primary_port_ = 0;
    std::uint64_t failovers_ = 0;
    std::uint64_t sentinel_changes_ = 0;
    int unanswered_ = 0; // polls of the current sentinel without an answer
    bool asking_ = false;
    bool started_ = false;
    bool stopped_ = false;
    log_throttle complaints_{std::chrono::seconds(10)};

    impl(asio::io_context& io, sentinel_monitor_options options, primary_handler on_primary)
        : io_(io), options_(std::move(options)), on_primary_(std::move(on_primary)),
          poll_timer_(io) {
        if (options_.sentinels.empty()) throw std::invalid_argument("no sentinels given");
        if (options_.master_name.empty()) throw std::invalid_argument("no master name given");
    }

    const redis_endpoint& sentinel() const { return options_.sentinels[current_]; }

    void start() {
        if (started_) return;
        started_ = true;
        command_client_options q;
        q.reconnect_min = options_.reconnect_min;
        q.reconnect_max = options_.reconnect_max;
        q.ping_interval = std::chrono::seconds(1);
        q.log_name = "redis sentinel";
        query_ = std::make_unique<command_client>(io_, sentinel(), q);

        subscriber_options w;
        w.reconnect_min = options_.reconnect_min;
        w.reconnect_max = options_.reconnect_max;
        w.ping_interval = std::chrono::seconds(1);
        w.log_name = "redis sentinel watch";
        subscriber_handlers h;
        std::weak_ptr<impl> weak = shared_from_this();
        h.on_message = [weak](std::string_view, std::string_view payload) {
            if (auto self = weak.lock()) self->on_switch(payload);
        };
        // A watch link that was down may have missed an announcement.
        h.on_state = [weak](bool up) {
            if (auto self = weak.lock(); self && up) self->ask();
        };
        watch_ = std::make_unique<subscriber>(io_, sentinel(), w, std::move(h));
        watch_->subscribe(switch_channel);
        query_->start();
        watch_->start();
        arm_poll();
    }

    void stop() {
        if (stopped_) return;
        stopped_ = true;
        poll_timer_.cancel();
        if (query_) query_->stop();
        if (watch_) watch_->stop();
    }

    void arm_poll() {
        poll_timer_.expires_after(options_.poll_interval);
        poll_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->stopped_) return;
            self->poll();
            self->arm_poll();
        });
    }

    void poll() {
        if (asking_ || !query_->connected()) ++unanswered_;
        if (unanswered_ >= patience && options_.sentinels.size() > 1) return next_sentinel();
        ask();
    }

    /// The current sentinel said nothing useful for `patience` periods: ask the next one.
    void next_sentinel() {
        const auto given_up = address_of(sentinel());
        current_ = (current_ + 1) % options_.sentinels.size();
        ++sentinel_changes_;
        unanswered_ = 0;
        asking_ = false; // an answer still due from the old one is ignored (see ask())
        spdlog::warn("redis sentinel {} is not answering ({}); asking {}", given_up,
                     query_->last_error().empty() ? "no reply" : query_->last_error(),
                     address_of(sentinel()));
        query_->retarget(sentinel(), true);
        watch_->retarget(sentinel(), true);
    }

    void ask() {
        if (stopped_ || asking_ || !query_ || !query_->connected()) return;
        asking_ = true;
        query_->execute(
            {"SENTINEL", "get-master-addr-by-name", options_.master_name},
            [weak = weak_from_this(), asked = current_](std::optional<reply> r, std::string error) {
                auto self = weak.lock();
                if (!self || self->stopped_ || asked != self->current_) return;
                self->asking_ = false;
                self->on_answer(r, error);
            });
    }

    void on_answer(const std::optional<reply>& r, const std::string& error) {
        std::string problem;
        if (!error.empty())
            problem = error;
        else if (r->type == reply::kind::nil)
            problem = "it monitors no primary named \"" + options_.master_name + "\"";
        else if (r->type != reply::kind::array || r->elements.size() != 2 ||
                 r->elements[0].type != reply::kind::string ||
                 r->elements[1].type != reply::kind::string)
            problem = "unexpected reply to SENTINEL get-master-addr-by-name";
        std::optional<std::uint16_t> port;
        if (problem.empty() && !(port = parse_port(r->elements[1].str)))
            problem = "bad port \"" + r->elements[1].str + "\"";
        if (!problem.empty()) {
            ++unanswered_;
            if (const auto n = complaints_.hit(std::chrono::steady_clock::now()))
                spdlog::error("redis sentinel {}: {} ({} times)", address_of(sentinel()), problem,
                              n);
            return;
        }
        unanswered_ = 0;
        set_primary(r->elements[0].str, *port, "named by");
    }

    void on_switch(std::string_view payload) {
        // "<name> <old-ip> <old-port> <new-ip> <new-port>"
        std::vector<std::string_view> words;
        while (!payload.empty() && words.size() < 6) {
            const auto space = payload.find(' ');
            words.push_back(payload.substr(0, space));
            payload =
                space == std::string_view::npos ? std::string_view() : payload.substr(space + 1);
        }
        if (words.size() != 5 || words[0] != options_.master_name) return;
        const auto port = parse_port(words[4]);
        if (!port) return;
        set_primary(std::string(words[3]), *port, "announced by");
        ask(); // and confirm it
    }

    void set_primary(const std::string& host, std::uint16_t port, const char* how) {
        if (host == primary_host_ && port == primary_port_) return;
        const bool first = primary_host_.empty();
        if (!first) ++failovers_;
        redis_endpoint where;
        where.host = host;
        where.port = port;
        if (first)
            spdlog::info("redis primary \"{}\" is {} ({} sentinel {})", options_.master_name,
                         address_of(where), how, address_of(sentinel()));
        else
            spdlog::warn("redis primary \"{}\" moved from {}:{} to {} ({} sentinel {})",
                         options_.master_name, primary_host_, primary_port_, address_of(where), how,
                         address_of(sentinel()));
        primary_host_ = host;
        primary_port_ = port;
        if (on_primary_) on_primary_(host, port);
    }
};

sentinel_monitor::sentinel_monitor(asio::io_context& io, sentinel_monitor_options options,
                                   primary_handler on_primary)
    : impl_(std::make_shared<impl>(io, std::move(options), std::move(on_primary))) {}

sentinel_monitor::~sentinel_monitor() { impl_->stop(); }

void sentinel_monitor::start() { impl_->start(); }
void sentinel_monitor::stop() { impl_->stop(); }
void sentinel_monitor::refresh() { impl_->ask(); }
std::string sentinel_monitor::sentinel_address() const { return address_of(impl_->sentinel()); }
std::string sentinel_monitor::primary_address() const {
    if (impl_->primary_host_.empty()) return {};
    redis_endpoint where;
    where.host = impl_->primary_host_;
    where.port = impl_->primary_port_;
    return address_of(where);
}
std::uint64_t sentinel_monitor::failovers() const { return impl_->failovers_; }
std::uint64_t sentinel_monitor::sentinel_changes() const { return impl_->sentinel_changes_; }

} // namespace ssegw
