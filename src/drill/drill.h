// Owns `poolguard drill`: the scenario generator that plays the runbook's edge plane against a real server
// (directly or through poolguard), scaled to a small machine — gradual exhaustion, sudden spike (a batch
// job opening 5 x N connections at once), connection leak (a worker that leaves transactions open), with
// steady web traffic alongside — and summarises what the clients saw (ok / failed by SQLSTATE, latency
// percentiles). Blocking libpq, one thread per connection.
#pragma once

#include <atomic>
#include <map>
#include <mutex>
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
};

// What one role (web, gradual, batch, leaky-worker) saw.
struct RoleStats {
    uint64_t ok = 0;
    std::map<std::string, uint64_t> failed;  // by SQLSTATE ("" = no SQLSTATE, e.g. connection refused)
    std::vector<double> latency_ms;          // of successful statements (and connects)
};

// Thread-safe tally of outcomes; summary() is sans-I/O and unit-tested.
class Recorder {
  public:
    void ok(const std::string& role, double latency_ms);
    void failed(const std::string& role, const std::string& sqlstate);
    std::map<std::string, RoleStats> roles() const;

  private:
    mutable std::mutex mutex_;
    std::map<std::string, RoleStats> roles_;
};

// The p-th percentile (0..100) of `values` (nearest rank); 0 for none.
double percentile(std::vector<double> values, double p);
// "web: 600 ok, 2 failed (53300 x2), latency p50 1.2 ms p95 3.4 ms p99 9.9 ms" — one line per role.
std::string format_summary(const std::map<std::string, RoleStats>& roles);

// Runs the scenario for duration_s (or until *stop). Returns the outcomes per role.
std::map<std::string, RoleStats> run(const Options& options, const std::atomic<bool>* stop = nullptr);

}  // namespace poolguard::drill
