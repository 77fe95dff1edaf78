// Owns process-wide logging setup (spdlog to stderr or a logfile) and the logger accessor.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace poolguard {

// Sends log lines to `logfile` (appending) when it is non-empty, else to stderr. Safe to call again on
// reload.
void setup_logging(const std::string& logfile, int verbose);

}  // namespace poolguard
