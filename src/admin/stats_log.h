// Owns the periodic statistics log line of log_stats (PgBouncer's "stats: ..." line every stats_period),
// sans I/O: the line from the per-second rates of the last period.
#pragma once

#include <string>
#include <vector>

#include "admin/admin_backend.h"

namespace poolguard::admin {

// `rates`: AdminBackend::stats_averages() rows (per-second rates over the last period, per database). The
// line sums every database: transactions, queries, named parses from clients and to servers, binds per
// second, bytes in and out per second, then the average transaction and query durations and the client
// wait time (as SHOW STATS_AVERAGES computes them).
std::string stats_log_line(const std::vector<StatsRow>& rates);

}  // namespace poolguard::admin
