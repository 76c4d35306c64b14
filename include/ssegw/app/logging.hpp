#pragma once
// Process-wide logging set-up: spdlog to stderr as text lines or as one JSON object per line
// (log.format), at log.level. Tokens are never logged anywhere; user ids and reasons are.

#include "ssegw/config/config.hpp"

namespace ssegw {

void setup_logging(const log_config& cfg);

} // namespace ssegw
