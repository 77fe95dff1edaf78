// Owns `poolguard drill`: the scenario generator that plays the runbook's edge plane against a real server
// (directly or through poolguard), scaled to a small machine — gradual exhaustion, sudden spike (a batch
// job opening 5 x N connections at once), connection leak (a worker that leaves transactions open), with
// steady web traffic alongside — and summarises what the clients saw (ok / failed by SQLSTATE, latency
// percentiles, a per-second timeline and the time web traffic took to recover), readably or as JSON.
// Blocking libpq, one thread per connection.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace poolguard::drill {

struct Options {
    std::string conninfo;            // libpq conninfo of the target (database or poolguard)
    std::string scenario = "spike";  // gradual | spike | leak | web
    double duration_s = 30;
    double rate = 20;  // web queries per second (all web connections together)
    double scale = 1;  // multiplies connection counts: gradual 20, spike 5 x 4, leak up to 10, web 3
    bool web = true;   // steady web traffic alongside the scenario
    // Each web request opens its own connection, runs one query and closes it (a PHP or serverless
    // worker), so a full database refuses web requests; false: each web connection is opened once.
    bool web_reconnect = false;
    // Where the scenario's own clients (batch jobs, leaky worker, gradual "reporting") connect; empty =
    // conninfo. E.g. web through poolguard while a reporting tool fills the database directly.
    std::string scenario_conninfo;
    // Seconds of web traffic alone before the scenario's load starts; < 0 = the scenario's default
    // (spike: a quarter of the duration; gradual and leak: 0). Gradual opens its connections evenly over
    // the rest of the run.
    double lead_in_s = -1;
    double slo_ms = 250;  // a one-second window whose p99 exceeds this (or that has a failure) is a breach
};

// One request (a statement, a connect, or a web request = connect + query when web_reconnect): when it
// started (seconds since the run started), how long it took, and its SQLSTATE ("" = it succeeded).
struct Request {
    double start_s = 0;
    double latency_ms = 0;
    bool ok = true;
    std::string sqlstate;
};

// What one role (web, gradual, batch, leaky-worker) saw.
struct RoleStats {
    uint64_t ok = 0;
    std::map<std::string, uint64_t> failed;  // by SQLSTATE ("" = no SQLSTATE, e.g. connection refused)
    std::vector<double> latency_ms;          // of successful statements (and connects)
    std::vector<Request> requests;           // every outcome with its time, in recording order
};

// Thread-safe tally of outcomes; summary() is sans-I/O and unit-tested. Times are seconds since the
// Recorder was made (steady clock); started_at() is that moment on the wall clock.
class Recorder {
  public:
    Recorder();
    void ok(const std::string& role, double latency_ms);  // a request that just finished
    void failed(const std::string& role, const std::string& sqlstate, double latency_ms = 0);
    // An outcome with an explicit start time (seconds since the Recorder was made).
    void record(const std::string& role, const Request& request);
    std::map<std::string, RoleStats> roles() const;
    double now_s() const;
    std::chrono::system_clock::time_point started_at() const { return wall_start_; }

  private:
    std::chrono::steady_clock::time_point start_;
    std::chrono::system_clock::time_point wall_start_;
    mutable std::mutex mutex_;
    std::map<std::string, RoleStats> roles_;
};

// The p-th percentile (0..100) of `values` (nearest rank); 0 for none.
double percentile(std::vector<double> values, double p);
// "web: 600 ok, 2 failed (53300 x2), latency p50 1.2 ms p95 3.4 ms p99 9.9 ms" — one line per role.
std::string format_summary(const std::map<std::string, RoleStats>& roles);

// One second (or bucket) of a role's timeline, by request start time: what started then and how it went.
struct Bucket {
    double start_s = 0;
    uint64_t ok = 0;
    uint64_t failed = 0;
    double p99_ms = 0;  // of the successful requests; 0 for none
};
// The role's requests in buckets of bucket_s covering [0, duration_s) (requests after it go to the last).
std::vector<Bucket> timeline(const RoleStats& role, double duration_s, double bucket_s = 1);

// Time to recover, from a timeline: a bucket is a breach when a request failed or p99 exceeded slo_ms,
// healthy when it has successful requests and no breach, empty otherwise. After the first breach, the role
// recovered at the start of the first healthy bucket that begins min_stable_s without a breach (empty
// buckets do not break it; the run must last that long); time_to_recover_s = recovered_s - first_breach_s.
// A later breach does not undo the recovery; breach_s counts every breached second.
struct Recovery {
    std::optional<double> first_breach_s;  // none: no breach at all
    std::optional<double> recovered_s;     // none while breached: not recovered by the end of the run
    double breach_s = 0;                   // total seconds in breach
    std::optional<double> time_to_recover_s() const;
};
Recovery recovery(const std::vector<Bucket>& timeline, double slo_ms, double min_stable_s = 3);

// The outcome of one run, with what is needed to line it up with poolguard's journal.
struct Report {
    Options options;
    std::chrono::system_clock::time_point started_at;
    double incident_start_s = 0;  // when the scenario's load started (seconds since started_at)
    std::map<std::string, RoleStats> roles;
};
// JSON for scripts: scenario, started_at (RFC 3339), duration_s, incident_start_s, slo_ms and per role
// ok, failed, failed_by {SQLSTATE: n}, p50/p95/p99/max ms, timeline [{t, ok, failed, p99_ms}],
// first_breach_s, recovered_s, time_to_recover_s (null when none), breach_s.
nlohmann::json to_json(const Report& report);

// Runs the scenario for duration_s (or until *stop). Returns the outcomes per role.
std::map<std::string, RoleStats> run(const Options& options, const std::atomic<bool>* stop = nullptr);
// The same, with the timing needed for to_json.
Report run_report(const Options& options, const std::atomic<bool>* stop = nullptr);

}  // namespace poolguard::drill
