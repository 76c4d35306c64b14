#include "ssegw/app/metrics_report.hpp"

#include "ssegw/broker/broker.hpp"
#include "ssegw/broker/resume_service.hpp"
#include "ssegw/core/prometheus_text.hpp"
#include "ssegw/router/router.hpp"
#include "ssegw/shard/shard.hpp"
#include "ssegw/shard/shard_set.hpp"

namespace ssegw {

namespace {

std::uint64_t sum(const shard_set& shards,
                  const std::atomic<std::uint64_t> shard_counters::*field) {
    std::uint64_t total = 0;
    for (const auto* s : shards) total += (s->counters().*field).load(std::memory_order_relaxed);
    return total;
}

/// One element of a per-reason counter array, summed over shards.
template <std::size_t N>
std::uint64_t sum_at(const shard_set& shards,
                     const std::array<std::atomic<std::uint64_t>, N> shard_counters::*field,
                     std::size_t i) {
    std::uint64_t total = 0;
    for (const auto* s : shards) total += (s->counters().*field)[i].load(std::memory_order_relaxed);
    return total;
}

std::string label(std::string_view key, std::string_view value) {
    std::string out(key);
    out += "=\"";
    out += value;
    out += '"';
    return out;
}

} // namespace

std::string render_metrics(const shard_set& shards, const router& r, const broker& b,
                           const resume_service& resume, bool draining) {
    prometheus_text out;
    for (const auto* s : shards)
        out.gauge("ssegw_connections", "Open SSE streams.",
                  s->counters().connections.load(std::memory_order_relaxed),
                  label("shard", std::to_string(s->id())));
    out.counter("ssegw_connections_opened_total", "SSE streams opened.",
                sum(shards, &shard_counters::opened));
    for (std::size_t i = 0; i < close_reason_names.size(); ++i)
        out.counter("ssegw_connections_closed_total",
                    "Connections closed, streams and refused handshakes, by reason.",
                    sum_at(shards, &shard_counters::closed, i),
                    label("reason", close_reason_names[i]));
    for (std::size_t i = 0; i < reject_reason_names.size(); ++i)
        out.counter("ssegw_requests_rejected_total", "Subscribe requests refused, by reason.",
                    sum_at(shards, &shard_counters::rejected, i),
                    label("reason", reject_reason_names[i]));
    out.counter("ssegw_slow_consumer_disconnects_total",
                "Streams closed because their unsent bytes exceeded sse.max_queue_bytes.",
                sum_at(shards, &shard_counters::closed,
                       static_cast<std::size_t>(close_reason::slow_consumer)));
    constexpr std::string_view kinds[] = {"user", "topic", "broadcast"};
    for (std::size_t k = 0; k < 3; ++k)
        out.counter("ssegw_events_received_total",
                    "Events received from the broker, by channel kind.", r.events_received(k),
                    label("kind", kinds[k]));
    for (std::size_t i = 0; i < route_drop_names.size(); ++i)
        out.counter("ssegw_events_dropped_total", "Events that reached no stream, by reason.",
                    r.dropped(static_cast<route_drop>(i)), label("reason", route_drop_names[i]));
    out.counter("ssegw_frames_delivered_total",
                "Frames queued to streams (one per stream per event).",
                sum(shards, &shard_counters::frames_delivered));
    out.counter("ssegw_bytes_written_total", "Bytes written to streams.",
                sum(shards, &shard_counters::bytes_written));
    out.counter("ssegw_heartbeats_total", "Heartbeat comments sent to idle streams.",
                sum(shards, &shard_counters::heartbeats));
    out.counter("ssegw_token_expiry_notices_total",
                "event: token-expiring sent (auth.expiry_notice_seconds before a token's exp).",
                sum(shards, &shard_counters::expiry_notices));
    // Every shard holds the same records; shard 0's count stands for the process.
    out.gauge("ssegw_revocations", "Token revocations in force (users and jtis).",
              (*shards.begin())->counters().revocations.load(std::memory_order_relaxed));
    out.counter("ssegw_revocations_dropped_total",
                "Revocation records not kept because the list was full (per shard, summed).",
                sum(shards, &shard_counters::revocations_full));
    out.counter("ssegw_resumes_total", "Streams that came back with a Last-Event-ID.",
                sum(shards, &shard_counters::resumes));
    out.counter("ssegw_resume_replayed_events_total", "History events written to resuming streams.",
                sum(shards, &shard_counters::replayed_events));
    out.counter("ssegw_resume_truncated_total",
                "Resumes that began with event: history-truncated (gap or unknown id).",
                sum(shards, &shard_counters::truncated_resumes));
    out.counter("ssegw_resume_unknown_position_total",
                "Last-Event-IDs that were not a position of this history.",
                sum(shards, &shard_counters::unknown_positions));
    out.counter("ssegw_resume_failures_total",
                "Streams sent back (retry) because their history could not be read.",
                sum(shards, &shard_counters::resume_failures));
    out.counter("ssegw_resume_retries_total",
                "History reads for starting streams tried again (Redis went away mid-read).",
                resume.retries());
    out.counter("ssegw_history_caught_up_events_total",
                "History events routed after the live feed was lost and came back.",
                r.caught_up_events());
    out.gauge("ssegw_channels_held", "Channels at least one local stream joined.",
              static_cast<std::int64_t>(r.channel_count()));
    const auto stats = b.stats();
    out.gauge("ssegw_redis_connected", "1 while the Redis subscriber is connected.",
              stats.connected ? 1 : 0);
    out.counter("ssegw_redis_reconnects_total", "Redis subscriber reconnects.", stats.reconnects);
    out.gauge("ssegw_redis_subscribed_channels", "Channels the subscriber holds on Redis.",
              static_cast<std::int64_t>(stats.subscribed_channels));
    out.counter("ssegw_redis_protocol_errors_total", "Malformed replies from Redis.",
                stats.protocol_errors);
    out.counter("ssegw_history_epoch_changes_total",
                "History epochs seen to begin (Redis failed over, restarted or reloaded).",
                stats.epoch_changes);
    out.counter("ssegw_redis_tls_handshake_failures_total",
                "TLS handshakes with Redis that failed (certificate, protocol, not TLS).",
                stats.tls_failures);
    if (!stats.address.empty())
        out.gauge("ssegw_redis_info",
                  "1, labelled with the Redis server the links connect to and its role (a "
                  "primary found through Sentinel is checked with ROLE; a single server is not).",
                  1,
                  label("address", stats.address) + "," +
                      label("role", stats.sentinel.empty() ? "unchecked" : "master"));
    if (stats.cluster) {
        for (const auto& link : stats.cluster_links) {
            const auto node = label("node", link.address);
            out.gauge("ssegw_redis_shard_link_up",
                      "1 while the pub/sub link to a shard primary is up.", link.connected ? 1 : 0,
                      node);
            out.gauge("ssegw_redis_shard_channels", "Channels held on a shard primary's link.",
                      static_cast<std::int64_t>(link.channels), node);
            out.counter("ssegw_redis_shard_reconnects_total",
                        "Reconnects of the pub/sub link to a shard primary.", link.reconnects,
                        node);
        }
        out.counter("ssegw_redis_slot_map_refreshes_total", "Cluster slot maps read and accepted.",
                    stats.cluster_map_refreshes);
        out.counter("ssegw_redis_channel_moves_total",
                    "Channels moved to another shard (slot migrated, failover, refused).",
                    stats.cluster_moves);
        out.counter("ssegw_redis_redirects_total",
                    "Commands redirected by MOVED or ASK (run again where the reply pointed).",
                    stats.cluster_redirects);
    }
    if (!stats.sentinel.empty()) {
        out.counter("ssegw_redis_failovers_total",
                    "Times the sentinels named a new primary and the links moved to it.",
                    stats.failovers);
        out.gauge("ssegw_redis_sentinel_info", "1, labelled with the sentinel being asked.", 1,
                  label("address", stats.sentinel));
        out.counter("ssegw_redis_sentinel_changes_total",
                    "Moves to the next sentinel because the one asked stopped answering.",
                    stats.sentinel_changes);
    }
    out.gauge("ssegw_draining", "1 once shutdown has begun.", draining ? 1 : 0);
    latency_histogram merged;
    for (const auto* s : shards) s->counters().delivery_latency.merge_into(merged);
    out.histogram("ssegw_delivery_latency_seconds",
                  "From receipt by the process to queueing on the stream.", merged);
    size_histogram fanout;
    for (const auto* s : shards) s->counters().fanout.merge_into(fanout);
    out.histogram("ssegw_fanout_streams",
                  "Streams one event reached on one shard (the fan-out batch of one post).",
                  fanout);
    latency_histogram resume_merged;
    for (const auto* s : shards) s->counters().resume_latency.merge_into(resume_merged);
    out.histogram(
        "ssegw_resume_latency_seconds",
        "From a stream's request to its missed events being queued (history read included).",
        resume_merged);
    return std::move(out).str();
}

} // namespace ssegw
