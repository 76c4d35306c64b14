#pragma once
// Renders /metrics: per-shard counters summed (or labelled by shard) at scrape time, plus the
// router's and the broker's figures. Runs on the control loop.

#include <string>
#include <vector>

namespace ssegw {

class shard;
class router;
class broker;
class resume_service;

std::string render_metrics(const std::vector<shard*>& shards, const router& r, const broker& b,
                           const resume_service& resume, bool draining);

} // namespace ssegw
