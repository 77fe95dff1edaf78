// Owns process-wide logging setup (spdlog to stderr or a logfile, and syslog) and the logger accessor.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace poolguard {

// Sends log lines to `logfile` (appending) when it is non-empty, else to stderr. Safe to call again on
// reload.
void setup_logging(const std::string& logfile, int verbose);

// PgBouncer's syslog settings: with `enabled`, every line also goes to syslog (common/syslog_sink.h) under
// `ident` and `facility` (auth, authpriv, daemon, user, local0..7; another name falls back to daemon with a
// warning).
struct SyslogSettings {
    bool enabled = false;
    std::string ident = "pgbouncer";
    std::string facility = "daemon";
};
void setup_logging(const std::string& logfile, int verbose, const SyslogSettings& syslog);

// false (`serve -q`, `-d`): nothing is ever written to stderr — without a logfile, log lines are dropped.
// Applies to the following setup_logging calls.
void set_stderr_logging(bool allowed);

}  // namespace poolguard
