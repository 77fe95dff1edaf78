// Owns `poolguard drill --scenario incident`: the headline incident, scaled for a 2-core machine —
// three web services with app-side pools (open-loop paced requests with a client-side timeout), a fourth
// web service starting mid-incident, five batch jobs x 20 connections looping 1-3 s transactions, a mobile
// worker leaking an open transaction every 0.5 s, three 20 s bulk queries — played against one target, and
// the table of what each role saw. Blocking libpq with deadlines (poll), one thread per connection.
#pragma once

#include <atomic>
#include <map>
#include <string>
#include <vector>

#include "drill/drill.h"

namespace poolguard::drill {

struct IncidentOptions {
    std::string conninfo;     // libpq conninfo of the target (database, PgBouncer or poolguard)
    std::string label = "-";  // the target's name in the table ("direct", "pgbouncer", "poolguard")
    double duration_s = 60;
    double web_rate = 600;  // requests per second of web-a, web-b and web-c together
    int web_pool = 20;      // each web service's app-side pool: at most this many connections
    double timeout_s = 5;   // client-side request timeout of web requests (connect + wait + query)
    double web_idle_timeout_s =
        10;                      // the app-side pools close connections idle this long (HikariCP's minimum)
    double web_d_at = -1;        // web-d starts here (seconds); < 0 = half the duration
    int batch_jobs = 5;          // batch-1 .. batch-N
    int batch_connections = 20;  // per job
    double batch_start_s = 5;    // the batch jobs start here
    double leak_every_s = 0.5;   // mobile-worker: one leaked open transaction per this
    int bulk_queries = 3;        // bulk-report: this many queries of bulk_seconds each
    double bulk_seconds = 20;
    double bulk_at = -1;  // < 0 = a quarter of the duration
    std::string web_query = "select 1";
};

// One role's outcome. Requests are counted by RoleStats (ok with latency, failed by reason); the summary
// counts each failed web request at the request timeout in the percentiles.
struct IncidentRow {
    std::string role;
    uint64_t ok = 0;
    uint64_t failed = 0;
    std::string reasons;  // top failure reasons, "timeout x12, connect 53300 x3"
    double success_pct = 100;
    double p50_ms = 0;
    double p99_ms = 0;
    std::string note;
};

// The rows of one run: per role, each failed request counted at `failed_as_ms` in p50/p99 (the request
// timeout for web; 0 = failures are left out of the percentiles). Sans I/O; unit-tested.
IncidentRow summarize_role(const std::string& role, const RoleStats& stats, double failed_as_ms,
                           std::string note = "");
// "| label | role | ok | failed | reasons | success % | p50 | p99 | note |" lines, with a header first.
std::string format_incident_table(const std::string& label, const std::vector<IncidentRow>& rows,
                                  bool header = true);

// Plays the incident for duration_s (or until *stop) and returns the rows (web-a .. web-d, web (all),
// batch, mobile-worker, bulk-report).
std::vector<IncidentRow> run_incident(const IncidentOptions& options,
                                      const std::atomic<bool>* stop = nullptr);

}  // namespace poolguard::drill
