// Owns process-wide logging setup (spdlog to stderr or a logfile) and the logger accessor.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace poolguard {

// Sends log lines to `logfile` (appending) when it is non-empty, else to stderr. Safe to call again on
// reload.
void setup_logging(const std::string& logfile, int verbose);

// false (`serve -q`, `-d`): nothing is ever written to stderr — without a logfile, log lines are dropped.
// Applies to the following setup_logging calls.
void set_stderr_logging(bool allowed);

}  // namespace poolguard
