#include "ssegw/app/server.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <ctime>
#include <thread>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "ssegw/app/metrics_report.hpp"
#include "ssegw/app/presence_service.hpp"
#include "ssegw/auth/authenticator.hpp"
#include "ssegw/broker/cluster_broker.hpp"
#include "ssegw/broker/local_broker.hpp"
#include "ssegw/broker/redis_broker.hpp"
#include "ssegw/broker/resume_service.hpp"
#include "ssegw/config/config_loader.hpp"
#include "ssegw/core/channel.hpp"
#include "ssegw/core/cluster_cursor.hpp"
#include "ssegw/core/control_message.hpp"
#include "ssegw/core/log_throttle.hpp"
#include "ssegw/core/prometheus_text.hpp"
#include "ssegw/core/query_string.hpp"
#include "ssegw/http/admin_server.hpp"
#include "ssegw/http/listener.hpp"
#include "ssegw/router/router.hpp"
#include "ssegw/shard/shard.hpp"
#include "ssegw/shard/shard_set.hpp"

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
    // Every member is built from the ones above it; the only links made later are the ones into
    // the control loop, which shard_set::start() and broker::start() take (see run()).
    explicit impl(gateway_config c)
        : cfg(std::move(c)), auth(cfg.auth), shards(shard_count(cfg.server.threads), cfg),
          control(shards.control()), signals(control, SIGINT, SIGTERM), drain_timer(control),
          events(make_broker(control, cfg)), route(cfg.sse.max_event_bytes, shards, *events),
          resume(control, *events, route),
          presence(control, cfg, *events, presence_service::make_instance_id()),
          listeners(make_listeners(cfg, shards, auth)),
          admin(std::make_shared<admin_server>(
              control, endpoint_of(cfg.server.admin_host, cfg.server.admin_port),
              admin_routes_of())) {}

    static std::unique_ptr<broker> make_broker(asio::io_context& control,
                                               const gateway_config& cfg) {
        if (cfg.redis.standalone()) return std::make_unique<local_broker>(cfg.history);
        if (cfg.redis.deployment == redis_deployment::cluster)
            return std::make_unique<cluster_broker>(control, cfg);
        return std::make_unique<redis_broker>(control, cfg);
    }

    static std::vector<std::shared_ptr<listener>>
    make_listeners(const gateway_config& cfg, shard_set& shards, const authenticator& auth) {
        const auto public_at = endpoint_of(cfg.server.host, cfg.server.port);
        std::vector<std::shared_ptr<listener>> out;
        if (cfg.server.accept == accept_mode::reuseport) {
            for (auto* s : shards)
                out.push_back(std::make_shared<listener>(s->context(), public_at, shards, s, auth));
        } else {
            out.push_back(
                std::make_shared<listener>(shards.control(), public_at, shards, nullptr, auth));
        }
        return out;
    }

    admin_routes admin_routes_of() {
        admin_routes routes;
        routes.ready = [this] { return !shards.draining() && events->ready(); };
        routes.metrics = [this] {
            return render_metrics(shards, route, *events, resume, shards.draining()) +
                   control_metrics() + presence.metrics();
        };
        routes.publish = [this](std::string channel, std::string payload,
                                std::function<void(unsigned, std::string)> reply) {
            // Refuse what every delivery would drop, by the delivery path's own rules, instead
            // of storing it in history and dropping it on every stream.
            if (const auto refused = build_frame(payload, cfg.sse.max_event_bytes).dropped) {
                const nlohmann::json body = {{"error", std::string(to_string(*refused)) + ": " +
                                                           std::string(explain(*refused))}};
                return reply(*refused == drop_reason::too_large ? 413 : 400, body.dump());
            }
            events->publish(std::move(channel), std::move(payload), cfg.history.enabled,
                            [reply = std::move(reply)](bool ok, std::string detail) {
                                publish_reply(reply, ok, detail);
                            });
        };
        routes.position = [this](std::string query, admin_routes::reply_fn reply) {
            position(query, std::move(reply));
        };
        routes.disconnect = [this](std::string body, admin_routes::reply_fn reply) {
            disconnect(body, std::move(reply));
        };
        routes.presence = [this](std::string query, admin_routes::reply_fn reply) {
            presence.query(query, std::move(reply));
        };
        routes.refused = [this] { ++admin_refused; };
        routes.api_key = admin_key_of(cfg.admin);
        routes.max_body_bytes = cfg.sse.max_event_bytes + 1024;
        return routes;
    }

    /// GET /position: where history stands now, the position a page that reads its data after
    /// this call opens its stream from (?lastEventId=): every event published later has a
    /// higher sequence, so the resume replays it; nothing earlier is replayed.
    void position(std::string_view query, admin_routes::reply_fn reply) {
        if (!cfg.history.enabled)
            return reply(409, R"({"error":"history is disabled (history.enabled is false): )"
                              R"(streams have no positions"})");
        if (cfg.redis.deployment == redis_deployment::cluster)
            return cluster_position(query, std::move(reply));
        events->read_history({}, std::nullopt, [this, reply = std::move(reply)](history_read r) {
            if (!r.ok) {
                ++position_failures;
                const nlohmann::json body = {{"error", "history unavailable: " + r.error}};
                return reply(503,
                             body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            }
            ++positions_given;
            reply(200, nlohmann::json{{"position", r.tip.format()}}.dump());
        });
    }

    /// POST /disconnect: checked here, then sent to every instance (this one included) as a
    /// control message; 202 once Redis has it (the streams close as each instance reads it).
    void disconnect(const std::string& body, const admin_routes::reply_fn& reply) {
        const auto now = static_cast<std::int64_t>(std::time(nullptr));
        auto parsed = parse_disconnect_request(body, now, cfg.auth.revocation_ttl_seconds);
        if (const auto* problem = std::get_if<std::string>(&parsed)) {
            ++disconnects_refused;
            return reply(400, nlohmann::json{{"error", *problem}}.dump(
                                  -1, ' ', false, nlohmann::json::error_handler_t::replace));
        }
        const auto& m = std::get<control_message>(parsed);
        ++disconnects[m.jti.empty() ? (m.revoke ? 1 : 0) : 2];
        events->send_control(
            to_json(m), m.until, [reply, until = m.until](bool ok, const std::string& detail) {
                nlohmann::json out = {{"ok", ok}};
                if (!ok) out["error"] = detail;
                if (ok && until != 0) out["revoked_until"] = until;
                reply(ok ? 202 : 503,
                      out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
            });
    }

    /// A control message from the channel (or read back from Redis): every shard records the
    /// revocation and closes the streams it names.
    void on_control(std::string_view text, bool replayed) {
        auto m = parse_control_message(text);
        if (!m) {
            ++control_malformed;
            if (const auto n = malformed_log.hit(std::chrono::steady_clock::now()))
                spdlog::warn("ignored {} control message(s) that are not ours (not a "
                             "disconnect or revocation the gateway wrote)",
                             n);
            return;
        }
        ++control_applied;
        shards.invoke_on_all([m = std::move(*m), replayed](shard& s) {
            s.apply_control(m, replayed, static_cast<std::int64_t>(std::time(nullptr)));
        });
    }

    /// What the admin port's control verbs did (control loop only, so plain integers).
    std::string control_metrics() const {
        prometheus_text out;
        out.counter("ssegw_admin_unauthorized_total",
                    "Admin control requests refused (401) for a missing or wrong admin key.",
                    admin_refused);
        constexpr std::string_view kinds[] = {"user", "user_revoke", "jti"};
        for (std::size_t k = 0; k < 3; ++k)
            out.counter("ssegw_disconnect_requests_total",
                        "POST /disconnect requests accepted, by kind.", disconnects[k],
                        "kind=\"" + std::string(kinds[k]) + "\"");
        out.counter("ssegw_disconnect_bad_requests_total",
                    "POST /disconnect requests refused (400) for their body.", disconnects_refused);
        out.counter("ssegw_control_messages_total",
                    "Control messages received (from any instance, or read back from Redis).",
                    control_applied, R"(result="applied")");
        out.counter("ssegw_control_messages_total",
                    "Control messages received (from any instance, or read back from Redis).",
                    control_malformed, R"(result="malformed")");
        out.counter("ssegw_positions_total", "Positions handed out by GET /position.",
                    positions_given);
        out.counter("ssegw_position_failures_total",
                    "GET /position answered 503 (history could not be read).", position_failures);
        return std::move(out).str();
    }

    /// GET /position?user=<id>&topic=<t>... in Redis Cluster mode: each channel has its own
    /// position, so the answer is the composite cursor (core/cluster_cursor.hpp) of the stream
    /// those name (the user's channel, broadcast, the topics), at each channel's tip now.
    void cluster_position(std::string_view query, admin_routes::reply_fn reply) {
        const auto params = parse_query(query);
        std::vector<std::string> channels;
        std::string user;
        std::vector<std::string> topics;
        if (params)
            for (const auto& p : *params) {
                if (p.key == "user") user = p.value;
                if (p.key == "topic") topics.push_back(p.value);
            }
        const bool names_ok = is_valid_name(user) &&
                              std::all_of(topics.begin(), topics.end(),
                                          [](const std::string& t) { return is_valid_name(t); });
        if (!params || !names_ok || topics.size() > cfg.sse.max_topics)
            return reply(400, "{\"error\":\"in redis.mode cluster a position is per stream: "
                              "give ?user=<id> and the stream's ?topic=... (each channel has "
                              "its own history)\"}");
        channels.push_back(user_channel(user));
        channels.emplace_back(broadcast_channel);
        for (const auto& t : topics) channels.push_back(topic_channel(t));
        events->read_history(
            channels, std::nullopt, [this, channels, reply = std::move(reply)](history_read r) {
                if (!r.ok || r.channel_tips.size() != channels.size()) {
                    ++position_failures;
                    const nlohmann::json body = {{"error", "history unavailable: " + r.error}};
                    return reply(
                        503, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
                }
                ++positions_given;
                cluster_cursor c;
                for (std::size_t i = 0; i < channels.size(); ++i) {
                    // Two channels with one hash: the later is left out, as
                    // in a session's id (shard/composite_position.hpp).
                    const auto h = cursor_hash(channels[i]);
                    if (!c.find(h)) c.components.push_back({h, r.channel_tips[i]});
                }
                reply(200, nlohmann::json{{"position", c.format()}}.dump());
            });
    }

    /// 202 {"ok":true,"id":"<position>"} (id only when published with history: in Redis
    /// Cluster mode the channel's component as a one-component cursor, "2:<h>.<E>.<s>"), or 503
    /// with the broker's error.
    static void publish_reply(const std::function<void(unsigned, std::string)>& reply, bool ok,
                              const std::string& detail) {
        nlohmann::json body = {{"ok", ok}};
        if (!ok)
            body["error"] = detail;
        else if (stream_position::parse(detail) || cluster_cursor::parse(detail))
            body["id"] = detail;
        reply(ok ? 202 : 503, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }

    int run() {
        if (cfg.auth.mode == auth_mode::none)
            spdlog::warn("auth.mode is \"none\": any client may read any user's events by "
                         "naming it in ?user=; use this for development only");
        events->on_control([this](std::string_view m, bool replayed) { on_control(m, replayed); });
        events->start(route);
        if (cfg.presence.enabled) shards.set_presence_sink(&presence);
        presence.start();
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
        // Interest changes go to the router's masks; history requests to the resume service.
        shards.start(route, cfg.history.enabled ? &resume : nullptr);
        shards.run(); // the control loop, until finish()
        shards.stop();
        shards.join();
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
        const auto window =
            std::chrono::milliseconds(std::chrono::seconds(cfg.server.drain_seconds));
        spdlog::info("signal {}: draining {} connections over {} s; answering new streams with "
                     "retry: until then",
                     sig, shards.connections_total().load(), cfg.server.drain_seconds);
        shards.begin_draining();
        shards.invoke_on_all([window](shard& s) { s.drain(window); });
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
                         shards.connections_total().load());
        }
        if ((listeners_closed && shards.connections_total().load() == 0) || now >= drain_deadline)
            return finish();
        drain_timer.expires_after(std::chrono::milliseconds(50));
        drain_timer.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) poll_drained();
        });
    }

    /// Tells Redis this instance holds no streams any more (so a rolling deploy does not count
    /// its users twice until the records expire), waiting at most a second for the reply; a
    /// second signal, or Redis not answering, does not hold the exit up.
    void finish() {
        if (finishing) return finish_now();
        finishing = true;
        drain_timer.expires_after(std::chrono::seconds(1));
        drain_timer.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) finish_now();
        });
        presence.leave([this] { finish_now(); }); // at once without Redis or presence
    }

    void finish_now() {
        if (finished) return;
        finished = true;
        spdlog::info("drained; {} connections left, exiting", shards.connections_total().load());
        for (auto& l : listeners) l->stop();
        admin->stop();
        resume.stop();
        presence.stop();
        events->stop();
        signals.cancel();
        drain_timer.cancel();
        control.stop();
    }

    gateway_config cfg;
    authenticator auth;
    // Before everything that runs on their loops, so they are destroyed last: pending accepts
    // hold sockets that belong to the shards' io_contexts.
    shard_set shards;
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
    bool finishing = false;
    bool finished = false;
    std::unique_ptr<broker> events;
    router route;
    resume_service resume;
    presence_service presence;
    std::vector<std::shared_ptr<listener>> listeners;
    std::uint64_t admin_refused = 0;
    std::uint64_t positions_given = 0;
    std::array<std::uint64_t, 3> disconnects{}; ///< user, user + revoke, jti
    std::uint64_t disconnects_refused = 0;
    std::uint64_t control_applied = 0;
    std::uint64_t control_malformed = 0;
    log_throttle malformed_log{std::chrono::seconds(10)};
    std::uint64_t position_failures = 0;
    std::shared_ptr<admin_server> admin;
};

server::server(gateway_config cfg) : impl_(std::make_unique<impl>(std::move(cfg))) {}
server::~server() = default;
int server::run() { return impl_->run(); }

} // namespace ssegw
