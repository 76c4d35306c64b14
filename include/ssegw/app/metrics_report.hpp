#pragma once
// Renders /metrics: per-shard counters summed (or labelled by shard) at scrape time, plus the
// router's and the broker's figures. Runs on the control loop.

#include <string>

namespace ssegw {

class shard_set;
class router;
class broker;
class resume_service;

std::string render_metrics(const shard_set& shards, const router& r, const broker& b,
                           const resume_service& resume, bool draining);

} // namespace ssegw
