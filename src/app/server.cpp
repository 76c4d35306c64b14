#include "ssegw/app/server.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "ssegw/app/metrics_report.hpp"
#include "ssegw/auth/authenticator.hpp"
#include "ssegw/broker/local_broker.hpp"
#include "ssegw/broker/redis_broker.hpp"
#include "ssegw/broker/resume_service.hpp"
#include "ssegw/broker/router.hpp"
#include "ssegw/config/config_loader.hpp"
#include "ssegw/http/admin_server.hpp"
#include "ssegw/http/listener.hpp"
#include "ssegw/shard/runtime_context.hpp"
#include "ssegw/shard/shard.hpp"
#include "ssegw/shard/user_limiter.hpp"

namespace ssegw {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

unsigned shard_count(unsigned configured) {
    unsigned n = configured != 0 ? configured : std::thread::hardware_concurrency();
    return std::clamp(n, 1u, max_shards);
}

tcp::endpoint endpoint_of(const std::string& host, std::uint16_t port) {
    return {asio::ip::make_address(host), port};
}

} // namespace

struct server::impl {
    explicit impl(gateway_config c)
        : cfg(std::move(c)), auth(cfg.auth), users(cfg.server.max_connections_per_user),
          rt{cfg, auth, users, connections_total, draining, history_requester()},
          shards(make_shards(shard_count(cfg.server.threads))), shard_ptrs(pointers_to(shards)),
          control(shards.front()->context()), signals(control, SIGINT, SIGTERM),
          drain_timer(control) {
        route = std::make_unique<router>(
            cfg.sse.max_event_bytes,
            [this](unsigned id, std::vector<routed_event_ptr> batch) {
                // Shard 0 shares the control loop: its batch is delivered right here, in the
                // subscriber's read handler; the other shards get one post each.
                shard* target = shard_ptrs[id];
                asio::dispatch(target->context(),
                               [target, batch = std::move(batch)] { target->deliver(batch); });
            },
            [this](const std::string& ch, bool wanted) { events->want(ch, wanted); });
        if (cfg.redis.standalone())
            events = std::make_unique<local_broker>(cfg.history, *route);
        else
            events = std::make_unique<redis_broker>(control, cfg, *route);
        resume = std::make_unique<resume_service>(control, *events, *route);
        events->on_link([this](bool up) { resume->on_link(up); });
        if (cfg.history.enabled)
            rt.request_history = [this](std::vector<std::string> channels,
                                        std::optional<stream_position> from,
                                        resume_service::deliver_fn deliver,
                                        std::function<bool()> alive) {
                // Shard -> control loop, behind the shard's interest changes.
                asio::post(control, [this, channels = std::move(channels), from = std::move(from),
                                     deliver = std::move(deliver),
                                     alive = std::move(alive)]() mutable {
                    resume->request(std::move(channels), std::move(from), std::move(deliver),
                                    std::move(alive));
                });
            };

        const auto public_at = endpoint_of(cfg.server.host, cfg.server.port);
        if (cfg.server.accept == accept_mode::reuseport) {
            for (auto* s : shard_ptrs)
                listeners.push_back(std::make_shared<listener>(s->context(), public_at,
                                                               std::vector<shard*>{s}, true));
        } else {
            listeners.push_back(std::make_shared<listener>(control, public_at, shard_ptrs, false));
        }

        admin_routes routes;
        routes.ready = [this] { return !draining.load() && events->ready(); };
        routes.metrics = [this] {
            return render_metrics(shard_ptrs, *route, *events, *resume, draining.load());
        };
        routes.publish = [this](std::string channel, std::string payload,
                                std::function<void(unsigned, std::string)> reply) {
            // Refuse what every delivery would drop, by the delivery path's own rules, instead
            // of storing it in history and dropping it on every stream.
            if (const auto refused = build_frame(payload, cfg.sse.max_event_bytes).dropped) {
                const nlohmann::json body = {
                    {"error", std::string(to_string(*refused)) + ": " +
                                  std::string(explain(*refused))}};
                return reply(*refused == drop_reason::too_large ? 413 : 400, body.dump());
            }
            events->publish(std::move(channel), std::move(payload), cfg.history.enabled,
                            [reply = std::move(reply)](bool ok, std::string detail) {
                                publish_reply(reply, ok, detail);
                            });
        };
        routes.max_body_bytes = cfg.sse.max_event_bytes + 1024;
        admin = std::make_shared<admin_server>(
            control, endpoint_of(cfg.server.admin_host, cfg.server.admin_port), std::move(routes));
    }

    std::vector<std::unique_ptr<shard>> make_shards(unsigned n) {
        std::vector<std::unique_ptr<shard>> out;
        for (unsigned i = 0; i < n; ++i)
            out.push_back(std::make_unique<shard>(
                i, rt, [this](unsigned id, const std::string& ch, bool held) {
                    // Shard -> control loop, where the router's masks live.
                    asio::post(control, [this, id, ch, held] { route->on_interest(id, ch, held); });
                }));
        return out;
    }

    static std::vector<shard*> pointers_to(const std::vector<std::unique_ptr<shard>>& owned) {
        std::vector<shard*> out;
        for (const auto& s : owned) out.push_back(s.get());
        return out;
    }

    /// 202 {"ok":true,"id":"<position>"} (id only when published with history), or 503 with
    /// the broker's error.
    static void publish_reply(const std::function<void(unsigned, std::string)>& reply, bool ok,
                              const std::string& detail) {
        nlohmann::json body = {{"ok", ok}};
        if (!ok) body["error"] = detail;
        else if (stream_position::parse(detail)) body["id"] = detail;
        reply(ok ? 202 : 503, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }

    int run() {
        if (cfg.auth.mode == auth_mode::none)
            spdlog::warn("auth.mode is \"none\": any client may read any user's events by "
                         "naming it in ?user=; use this for development only");
        events->start();
        for (auto& l : listeners) l->start();
        admin->start();
        spdlog::info("sse-gateway listening on {}:{} ({} shards), admin on {}:{}, {}",
                     cfg.server.host, listeners.front()->local_endpoint().port(), shards.size(),
                     cfg.server.admin_host, admin->local_endpoint().port(),
                     cfg.redis.standalone() ? std::string("standalone (no Redis)")
                                            : "redis " + mask_redis_url(cfg.redis.url));
        signals.async_wait([this](const boost::system::error_code& ec, int sig) {
            if (!ec) begin_drain(sig);
        });
        for (std::size_t i = 1; i < shards.size(); ++i) shards[i]->start();
        shards.front()->run_here();  // the control loop, until finish()
        for (auto& s : shards) s->stop();
        for (auto& s : shards) s->join();
        return 0;
    }

    // The drain, in two phases (see docs/architecture.md, "Draining"):
    //  1. the window (server.drain_seconds): /readyz is 503, the listener stays open and
    //     answers every new stream 200 + jittered retry: + close, the shards send their streams
    //     away spread over the window. It lasts the whole window even when the streams are
    //     gone early: the load balancer's health check needs that long to notice, and a
    //     connection it still sends here must be answered, not refused (a refused connect is a
    //     load balancer 503, and EventSource gives up for good on a 503).
    //  2. the flush: the listener closes, the process waits for what is in flight (retry hints
    //     being written, refusals lingering) to finish, at most flush_grace, and exits 0.
    static constexpr auto flush_grace = std::chrono::seconds(3);

    void begin_drain(int sig) {
        const auto window = std::chrono::milliseconds(
            std::chrono::seconds(cfg.server.drain_seconds));
        spdlog::info("signal {}: draining {} connections over {} s; answering new streams with "
                     "retry: until then", sig, connections_total.load(), cfg.server.drain_seconds);
        draining = true;
        for (auto* s : shard_ptrs) asio::post(s->context(), [s, window] { s->drain(window); });
        window_end = std::chrono::steady_clock::now() + window;
        drain_deadline = window_end + flush_grace;
        signals.async_wait([this](const boost::system::error_code& ec, int) {
            if (!ec) finish(); // a second signal: stop now
        });
        poll_drained();
    }

    void poll_drained() {
        const auto now = std::chrono::steady_clock::now();
        if (now >= window_end && !listeners_closed) {
            listeners_closed = true;
            for (auto& l : listeners) l->stop();
            spdlog::info("drain window over; listener closed, {} connections finishing",
                         connections_total.load());
        }
        if ((listeners_closed && connections_total.load() == 0) || now >= drain_deadline)
            return finish();
        drain_timer.expires_after(std::chrono::milliseconds(50));
        drain_timer.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) poll_drained();
        });
    }

    void finish() {
        spdlog::info("drained; {} connections left, exiting", connections_total.load());
        for (auto& l : listeners) l->stop();
        admin->stop();
        resume->stop();
        events->stop();
        signals.cancel();
        drain_timer.cancel();
        control.stop();
    }

    gateway_config cfg;
    authenticator auth;
    user_limiter users;
    std::atomic<std::size_t> connections_total{0};
    std::atomic<bool> draining{false};
    runtime_context rt;
    // Declared before everything that runs on their loops, so they are destroyed last: pending
    // accepts hold sockets that belong to the shards' io_contexts.
    std::vector<std::unique_ptr<shard>> shards;
    std::vector<shard*> shard_ptrs;
    /// The control work (router, Redis links, resume service, listener, admin, signals) runs on
    /// shard 0's loop, on the main thread: an event for a stream of shard 0 is read from Redis
    /// and written to the client by the same thread, with no cross-thread wake-up, and the
    /// process runs exactly server.threads threads.
    asio::io_context& control;
    asio::signal_set signals;
    asio::steady_timer drain_timer;
    std::chrono::steady_clock::time_point window_end;
    std::chrono::steady_clock::time_point drain_deadline;
    bool listeners_closed = false;
    std::unique_ptr<router> route;
    std::unique_ptr<broker> events;
    std::unique_ptr<resume_service> resume;
    std::vector<std::shared_ptr<listener>> listeners;
    std::shared_ptr<admin_server> admin;
};

server::server(gateway_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}
server::~server() = default;
int server::run() { return impl_->run(); }

} // namespace ssegw
