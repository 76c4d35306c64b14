#include "ssegw/app/presence_service.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <variant>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "ssegw/core/presence_query.hpp"
#include "ssegw/core/prometheus_text.hpp"
#include "ssegw/redis/history_functions.hpp"
#include "ssegw/redis/presence_functions.hpp"

namespace ssegw {

namespace {

/// Users per call: keeps each call (and the time it holds Redis) short; a full report of many
/// users goes as several calls, pipelined.
constexpr std::size_t users_per_call = 250;
/// Lifecycle records per call, and how many may wait for Redis (beyond: dropped, counted).
constexpr std::size_t lifecycle_per_call = 1000;
constexpr std::size_t max_lifecycle_waiting = 100000;

std::string json_text(const nlohmann::json& j) {
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

} // namespace

presence_service::presence_service(boost::asio::io_context& control, const gateway_config& cfg,
                                   broker& events, std::string instance)
    : control_(control), cfg_(cfg.presence), prefix_(cfg.redis.prefix), events_(events),
      instance_(std::move(instance)), redis_(events.runs_commands()), heartbeat_(control) {}

presence_service::~presence_service() { *alive_ = false; }

std::string presence_service::make_instance_id() {
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, 8, "host");
    std::string name(host);
    if (name.size() > 40) name.resize(40);
    std::random_device rd;
    char tail[16];
    std::snprintf(tail, sizeof tail, "%08x", rd());
    return name + "-" + std::to_string(::getpid()) + "-" + tail;
}

void presence_service::start() {
    if (!cfg_.enabled || !redis_) return;
    spdlog::info("presence: instance id {}, records kept {} s after the last heartbeat", instance_,
                 cfg_.instance_ttl_seconds);
    // Install this version's library once (a running Redis may hold an older text of it);
    // later, a node that lacks it gets it when a call says so.
    const auto key = presence_stream_key(prefix_);
    events_.run_command(key, presence_load_command(),
                        [this, alive = alive_](std::optional<reply> r, const std::string& error) {
                            if (!*alive) return;
                            if (!error.empty() && error != "redis unavailable")
                                failed("install of the presence functions", error);
                        });
    // The first heartbeat registers the instance (with a full report): by then the command
    // link is usually up, and until it is the shards' reports wait in dirty_/local_.
    schedule_heartbeat();
}

void presence_service::stop() {
    stopped_ = true;
    heartbeat_.cancel();
}

void presence_service::leave(std::function<void()> done) {
    if (!cfg_.enabled || !redis_ || stopped_) return done();
    stop();
    presence_apply_args args;
    args.instance = instance_;
    args.ttl_ms = 0; // gone: the deadline is now, the next sweep removes the entry
    args.grace_ms = cfg_.offline_grace_seconds * 1000;
    args.max_len = cfg_.stream_max_len;
    args.reset = true;
    call(presence_stream_key(prefix_), presence_apply_command(prefix_, args, {}),
         [alive = alive_, done = std::move(done)](std::optional<reply>, const std::string&) {
             if (*alive) done();
         });
}

void presence_service::schedule_heartbeat() {
    heartbeat_.expires_after(std::chrono::milliseconds(cfg_.heartbeat_ms));
    heartbeat_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || stopped_) return;
        heartbeat_due_ = true;
        flush();
        schedule_heartbeat();
    });
}

void presence_service::on_presence(unsigned, presence_report report) {
    ++reports_;
    for (auto& [user, delta] : report.deltas) {
        auto it = local_.find(user);
        const std::int64_t before = it == local_.end() ? 0 : it->second;
        std::int64_t now = before + delta;
        if (now < 0) {
            // Cannot happen (a shard reports closings only of streams it reported opened);
            // counted rather than trusted.
            ++underflows_;
            now = 0;
        }
        if (now == 0) {
            if (it != local_.end()) local_.erase(it);
        } else if (it != local_.end()) {
            it->second = static_cast<std::uint32_t>(now);
        } else {
            local_.try_emplace(make_key(user), static_cast<std::uint32_t>(now));
        }
        if (redis_) dirty_.insert(std::move(user));
    }
    if (redis_) {
        for (auto& e : report.lifecycle) {
            if (lifecycle_.size() >= max_lifecycle_waiting) {
                ++lifecycle_dropped_;
                continue;
            }
            lifecycle_.push_back(std::move(e));
        }
        flush();
    }
}

void presence_service::flush() {
    if (!redis_ || stopped_ || in_flight_ != 0) return;
    if (!need_full_ && dirty_.empty() && lifecycle_.empty() && !heartbeat_due_) return;
    heartbeat_due_ = false;
    round_failed_ = false;
    round_unknown_ = false;
    round_full_ = need_full_;
    if (need_full_) {
        ++resyncs_;
        // The full report carries every user's current count. Released, not cleared: clear()
        // keeps the bucket array of the largest wave ever seen.
        std::unordered_set<std::string>().swap(dirty_);
        // The first chunk resets what Redis holds for this instance; the others go once it is
        // done, so that no chunk can be applied before the reset (a Cluster redirect re-sends a
        // command after the ones behind it).
        std::vector<std::pair<std::string, std::uint32_t>> chunk;
        std::vector<count_chunk> chunks;
        for (const auto& [user, count] : local_) {
            chunk.emplace_back(key_view(user), count);
            if (chunk.size() == users_per_call) {
                chunks.push_back(std::move(chunk));
                chunk.clear();
            }
        }
        if (chunks.empty() || !chunk.empty()) chunks.push_back(std::move(chunk));
        auto first = std::move(chunks.front());
        chunks.erase(chunks.begin());
        send_apply(std::move(first), true, true, std::move(chunks));
    } else {
        // Absolute counts of the users that changed (0 = none here any more), so a call that
        // is repeated, or whose reply was lost, cannot count anything twice. With nothing
        // changed this is the heartbeat.
        std::vector<std::pair<std::string, std::uint32_t>> chunk;
        bool sent = false;
        for (const auto& user : dirty_) {
            const auto it = local_.find(user);
            chunk.emplace_back(user, it == local_.end() ? 0 : it->second);
            if (chunk.size() == users_per_call) {
                send_apply(std::move(chunk), false, false);
                chunk.clear();
                sent = true;
            }
        }
        std::unordered_set<std::string>().swap(dirty_);
        if (!sent || !chunk.empty()) send_apply(std::move(chunk), false, false);
    }
    if (!lifecycle_.empty()) send_lifecycle();
}

void presence_service::send_apply(count_chunk counts, bool reset, bool full,
                                  std::vector<count_chunk> then) {
    presence_apply_args args;
    args.instance = instance_;
    args.ttl_ms = cfg_.instance_ttl_seconds * 1000;
    args.grace_ms = cfg_.offline_grace_seconds * 1000;
    args.max_len = cfg_.stream_max_len;
    args.reset = reset;
    const auto users = counts.size();
    ++in_flight_;
    call(presence_stream_key(prefix_), presence_apply_command(prefix_, args, counts),
         [this, alive = alive_, users, full,
          then = std::move(then)](std::optional<reply> r, const std::string& error) mutable {
             if (!*alive) return;
             std::optional<presence_apply_result> result;
             if (error.empty() && r) result = parse_presence_apply_reply(*r);
             if (!result) {
                 ++apply_errors_;
                 round_failed_ = true;
                 failed("presence update", error.empty() ? "unexpected reply" : error);
             } else {
                 ++batches_;
                 writes_ += users;
                 onlines_ += result->online;
                 offlines_ += result->offline;
                 swept_ += result->instances_swept;
                 // Our records were gone (swept after a long outage, or Redis lost its data):
                 // the users not named in this call are missing there.
                 if (!full && !result->was_known) round_unknown_ = true;
                 // A backlog (many offlines due at once, a big dead instance): keep calling
                 // now, each call short, instead of one bounded batch per heartbeat.
                 if (result->more) heartbeat_due_ = true;
                 // The reset is in: the rest of the full report (before this call counts as
                 // done, so the round does not end in between).
                 for (auto& chunk : then) send_apply(std::move(chunk), false, true);
             }
             round_done();
         });
}

void presence_service::send_lifecycle() {
    std::vector<lifecycle_entry> entries;
    const auto n = std::min(lifecycle_.size(), lifecycle_per_call);
    entries.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        auto& e = lifecycle_.front();
        entries.push_back({e.opened, std::move(e.user), std::move(e.topics), std::move(e.reason),
                           e.duration_seconds});
        lifecycle_.pop_front();
    }
    const auto key = lifecycle_stream_key(prefix_);
    auto command = lifecycle_add_command(prefix_, cfg_.lifecycle_max_len, instance_, entries);
    ++in_flight_;
    call(key, std::move(command),
         [this, alive = alive_, entries = std::move(entries)](std::optional<reply> r,
                                                              const std::string& error) mutable {
             if (!*alive) return;
             const auto n = entries.size();
             if (error.empty() && r && r->type == reply::kind::integer) {
                 lifecycle_written_ += n;
             } else {
                 ++lifecycle_errors_;
                 failed("lifecycle stream write", error.empty() ? "unexpected reply" : error);
                 if (is_transport_error(error)) {
                     // Redis unreachable, or the link died with the call in flight: the entries
                     // wait (bounded) for the next heartbeat. A call that reached Redis before
                     // the link died is written twice: the trail is at least once, not lost.
                     requeue_lifecycle(std::move(entries));
                     lifecycle_failed_ = true;
                 } else {
                     // Redis refused them (an ACL without XADD, a wrong type): asking again
                     // would not help; counted as lost.
                     lifecycle_dropped_ += n;
                 }
             }
             round_done();
         });
}

bool presence_service::is_transport_error(const std::string& error) {
    return error == "redis unavailable" || error.rfind("redis connection lost", 0) == 0;
}

void presence_service::requeue_lifecycle(std::vector<lifecycle_entry> entries) {
    // Back in front, in their order; beyond the bound the oldest go (counted).
    for (auto it = entries.rbegin(); it != entries.rend(); ++it)
        lifecycle_.push_front({it->opened, std::move(it->user), std::move(it->topics),
                               std::move(it->reason), it->duration_seconds});
    while (lifecycle_.size() > max_lifecycle_waiting) {
        lifecycle_.pop_front();
        ++lifecycle_dropped_;
    }
}

void presence_service::round_done() {
    if (--in_flight_ != 0) return;
    if (round_failed_ || round_unknown_)
        need_full_ = true;
    else if (round_full_)
        need_full_ = false;
    // Whatever changed meanwhile goes now; after a failure, at the next heartbeat (a Redis
    // that is down is not asked again in a loop).
    const bool wait = round_failed_ || lifecycle_failed_;
    lifecycle_failed_ = false;
    if (!wait) flush();
}

void presence_service::call(const std::string& key, std::vector<std::string> args,
                            broker::command_done done, bool may_load) {
    auto retry = may_load ? args : std::vector<std::string>{};
    events_.run_command(
        key, std::move(args),
        [this, alive = alive_, key, retry = std::move(retry), done = std::move(done),
         may_load](std::optional<reply> r, std::string error) mutable {
            if (!*alive) return;
            if (r && may_load && is_missing_function_error(*r)) {
                return events_.run_command(
                    key, presence_load_command(),
                    [this, alive, key, retry = std::move(retry), done = std::move(done)](
                        std::optional<reply> loaded, std::string load_error) mutable {
                        if (!*alive) return;
                        if (!load_error.empty() || !loaded)
                            return done(std::nullopt, "could not install the presence "
                                                      "functions: " +
                                                          load_error);
                        call(key, std::move(retry), std::move(done), false);
                    });
            }
            if (r && r->type == reply::kind::error && error.empty()) error = r->str;
            done(std::move(r), std::move(error));
        });
}

void presence_service::failed(std::string_view what, const std::string& error) {
    if (const auto n = error_log_.hit(std::chrono::steady_clock::now()))
        spdlog::warn("presence: {} failed ({} time(s) since the last report): {}", what, n, error);
}

void presence_service::query(std::string_view query, reply_fn respond) {
    if (!cfg_.enabled)
        return respond(409,
                       json_text({{"error", "presence is disabled (presence.enabled is false)"}}));
    auto parsed = parse_presence_query(query);
    if (const auto* problem = std::get_if<std::string>(&parsed))
        return respond(400, json_text({{"error", *problem}}));
    ++queries_;
    auto users = std::move(std::get<std::vector<std::string>>(parsed));
    if (!redis_) {
        nlohmann::json out = {{"users", nlohmann::json::object()}};
        for (const auto& u : users) {
            const auto it = local_.find(u);
            const std::uint64_t n = it == local_.end() ? 0 : it->second;
            out["users"][u] = {{"connections", n}, {"instances", n > 0 ? 1 : 0}};
        }
        return respond(200, json_text(out));
    }
    auto cmd = presence_get_command(prefix_, users);
    call(presence_stream_key(prefix_), std::move(cmd),
         [this, alive = alive_, users = std::move(users),
          respond = std::move(respond)](std::optional<reply> r, const std::string& error) {
             if (!*alive) return;
             std::optional<std::vector<user_presence>> got;
             if (error.empty() && r) got = parse_presence_get_reply(*r, users.size());
             if (!got) {
                 ++query_errors_;
                 return respond(
                     503, json_text({{"error", "presence unavailable: " +
                                                   (error.empty() ? std::string("unexpected reply")
                                                                  : error)}}));
             }
             nlohmann::json out = {{"users", nlohmann::json::object()}};
             for (std::size_t i = 0; i < users.size(); ++i)
                 out["users"][users[i]] = {{"connections", (*got)[i].connections},
                                           {"instances", (*got)[i].instances}};
             respond(200, json_text(out));
         });
}

std::string presence_service::metrics() const {
    prometheus_text out;
    if (!cfg_.enabled) return std::move(out).str();
    out.gauge("ssegw_presence_users", "Distinct users with at least one stream on this instance.",
              local_.size());
    out.counter("ssegw_presence_reports_total",
                "Presence reports received from the shards (one per shard per flush interval "
                "with changes).",
                reports_);
    out.counter("ssegw_presence_batches_total",
                "Presence calls to Redis that succeeded (changes, heartbeats, full reports).",
                batches_);
    out.counter("ssegw_presence_writes_total",
                "User counts written to Redis by successful presence calls.", writes_);
    out.counter("ssegw_presence_resyncs_total",
                "Full reports of this instance's counts (at start, after a failed call, or "
                "after its records were found gone).",
                resyncs_);
    out.counter("ssegw_presence_transitions_total",
                "Online/offline entries written to <prefix>presence by this instance's calls.",
                onlines_, R"(type="online")");
    out.counter("ssegw_presence_transitions_total",
                "Online/offline entries written to <prefix>presence by this instance's calls.",
                offlines_, R"(type="offline")");
    out.counter("ssegw_presence_instances_swept_total",
                "Dead instances whose records this instance's heartbeat removed.", swept_);
    out.counter("ssegw_presence_queries_total", "GET /presence requests answered or tried.",
                queries_);
    out.counter("ssegw_presence_errors_total", "Presence calls to Redis that failed.",
                apply_errors_, R"(op="update")");
    out.counter("ssegw_presence_errors_total", "Presence calls to Redis that failed.",
                query_errors_, R"(op="query")");
    out.counter("ssegw_presence_errors_total", "Presence calls to Redis that failed.",
                lifecycle_errors_, R"(op="lifecycle")");
    out.counter("ssegw_presence_count_underflows_total",
                "Closings reported for a user with no open stream here (a bug if ever > 0).",
                underflows_);
    if (cfg_.lifecycle_stream) {
        out.counter("ssegw_lifecycle_entries_total",
                    "Entries written to <prefix>lifecycle (streams opened and closed).",
                    lifecycle_written_);
        out.counter("ssegw_lifecycle_dropped_total",
                    "Lifecycle entries lost: Redis refused or could not take them, or too many "
                    "were waiting.",
                    lifecycle_dropped_);
    }
    return std::move(out).str();
}

} // namespace ssegw
