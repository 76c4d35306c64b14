#include "ssegw/core/histogram.hpp"
#include "ssegw/core/prometheus_text.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace ssegw {
namespace {

TEST(prometheus_text, counter_without_labels) {
    prometheus_text t;
    t.counter("ssegw_events_received_total", "Events received from the broker.", 42);
    EXPECT_EQ(std::move(t).str(),
              "# HELP ssegw_events_received_total Events received from the broker.\n"
              "# TYPE ssegw_events_received_total counter\n"
              "ssegw_events_received_total 42\n");
}

TEST(prometheus_text, counter_with_labels) {
    prometheus_text t;
    t.counter("ssegw_events_dropped_total", "Events dropped.", 3, R"(reason="too_large")");
    EXPECT_EQ(std::move(t).str(), "# HELP ssegw_events_dropped_total Events dropped.\n"
                                  "# TYPE ssegw_events_dropped_total counter\n"
                                  "ssegw_events_dropped_total{reason=\"too_large\"} 3\n");
}

TEST(prometheus_text, help_and_type_once_per_name_and_families_stay_grouped) {
    prometheus_text t;
    t.gauge("ssegw_connections", "Open SSE connections.", 10, R"(shard="0")");
    t.counter("ssegw_redis_reconnects_total", "Redis reconnects.", 1);
    t.gauge("ssegw_connections", "ignored", 12, R"(shard="1")");
    EXPECT_EQ(std::move(t).str(), "# HELP ssegw_connections Open SSE connections.\n"
                                  "# TYPE ssegw_connections gauge\n"
                                  "ssegw_connections{shard=\"0\"} 10\n"
                                  "ssegw_connections{shard=\"1\"} 12\n"
                                  "# HELP ssegw_redis_reconnects_total Redis reconnects.\n"
                                  "# TYPE ssegw_redis_reconnects_total counter\n"
                                  "ssegw_redis_reconnects_total 1\n");
}

TEST(prometheus_text, gauge_values) {
    prometheus_text t;
    t.gauge("g", "h", 1.5);
    t.gauge("g", "h", std::int64_t{-7});
    t.gauge("g", "h", std::size_t{9});
    t.gauge("g", "h", 0.0005);
    t.gauge("g", "h", std::numeric_limits<double>::infinity());
    t.gauge("g", "h", -std::numeric_limits<double>::infinity());
    t.gauge("g", "h", std::nan(""));
    t.gauge("g", "h", 1e300);
    EXPECT_EQ(std::move(t).str(), "# HELP g h\n# TYPE g gauge\n"
                                  "g 1.5\ng -7\ng 9\ng 0.0005\ng +Inf\ng -Inf\ng NaN\ng 1e+300\n");
}

TEST(prometheus_text, help_is_escaped) {
    prometheus_text t;
    t.counter("c_total", "a\\b\nc", 0);
    EXPECT_EQ(std::move(t).str(), "# HELP c_total a\\\\b\\nc\n# TYPE c_total counter\nc_total 0\n");
}

TEST(prometheus_text, empty_writer) { EXPECT_EQ(prometheus_text{}.str(), ""); }

TEST(latency_histogram, buckets_are_inclusive_upper_bounds) {
    latency_histogram h;
    h.observe_us(0);
    h.observe_us(500);       // le 0.0005 (inclusive)
    h.observe_us(501);       // le 0.001
    h.observe_us(2'500'000); // le 2.5
    h.observe_us(2'500'001); // +Inf only
    EXPECT_EQ(h.bucket(0), 2u);
    EXPECT_EQ(h.bucket(1), 1u);
    EXPECT_EQ(h.bucket(latency_histogram::bucket_count - 1), 1u);
    EXPECT_EQ(h.bucket(latency_histogram::bucket_count), 1u);
    EXPECT_EQ(h.count(), 5u);
    EXPECT_EQ(h.sum_us(), 0u + 500 + 501 + 2'500'000 + 2'500'001);
}

TEST(latency_histogram, merge_into_adds) {
    latency_histogram a, b, total;
    a.observe_us(100);
    a.observe_us(30'000);
    b.observe_us(100);
    a.merge_into(total);
    b.merge_into(total);
    EXPECT_EQ(total.count(), 3u);
    EXPECT_EQ(total.bucket(0), 2u);
    EXPECT_EQ(total.bucket(6), 1u); // le 0.05
    EXPECT_EQ(total.sum_us(), 30'200u);
}

TEST(prometheus_text, histogram_is_cumulative_and_inf_equals_count) {
    latency_histogram h;
    h.observe_us(100);
    h.observe_us(500);
    h.observe_us(700);
    h.observe_us(20'000);
    h.observe_us(3'000'000);
    prometheus_text t;
    t.histogram("ssegw_delivery_latency_seconds", "Publish to write latency.", h, R"(shard="0")");
    EXPECT_EQ(std::move(t).str(),
              "# HELP ssegw_delivery_latency_seconds Publish to write latency.\n"
              "# TYPE ssegw_delivery_latency_seconds histogram\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.0005\"} 2\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.001\"} 3\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.0025\"} 3\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.005\"} 3\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.01\"} 3\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.025\"} 4\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.05\"} 4\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.1\"} 4\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.25\"} 4\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"0.5\"} 4\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"1\"} 4\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"2.5\"} 4\n"
              "ssegw_delivery_latency_seconds_bucket{shard=\"0\",le=\"+Inf\"} 5\n"
              "ssegw_delivery_latency_seconds_sum{shard=\"0\"} 3.0213\n"
              "ssegw_delivery_latency_seconds_count{shard=\"0\"} 5\n");
}

TEST(prometheus_text, histogram_without_labels) {
    latency_histogram h;
    prometheus_text t;
    t.histogram("lat_seconds", "h", h);
    const std::string text = std::move(t).str();
    EXPECT_NE(text.find("lat_seconds_bucket{le=\"0.0005\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("lat_seconds_bucket{le=\"+Inf\"} 0\n"), std::string::npos);
    EXPECT_NE(text.find("lat_seconds_sum 0\nlat_seconds_count 0\n"), std::string::npos);
}

} // namespace
} // namespace ssegw
