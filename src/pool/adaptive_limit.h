// Owns AdaptiveLimit and LatencyWindowCollector: the sans-I/O concurrency limit behind `adaptive_pool = on`
// (issue 6 part 4). The pool feeds it one window of query latencies at a time; it answers how many server
// connections the pool may use. No clocks, sockets or pools in here: time and counters are passed in.
//
// The algorithm is Gradient2 from Netflix's concurrency-limits library (described in its README and
// Gradient2Limit), applied to a database pool:
//
//   short_rtt = mean query time of the window that just closed
//   long_rtt  = exponential moving average of short_rtt over `long_window` windows (the first
//               `long_warmup` windows are averaged plainly, so the baseline is not the first sample)
//   if long_rtt / short_rtt > 2:  long_rtt *= 0.95     (recover quickly after a long overload)
//   if inflight < limit / 2:      keep the limit       (the pool is not the bottleneck: no evidence)
//   gradient  = clamp(rtt_tolerance * long_rtt / short_rtt, 0.5, 1.0)
//   new_limit = limit * gradient + queue_size
//   limit     = limit * (1 - smoothing) + new_limit * smoothing, clamped to [min_limit, max_limit]
//
// While latency stays within rtt_tolerance of the long-term average the gradient is 1 and the limit grows
// by smoothing * queue_size per window; when more connections only make every query slower (the database
// is CPU- or lock-bound) the gradient falls below 1 and the limit shrinks toward where latency stops rising.
// A gradient never below 0.5 keeps one outlier window from halving the pool.
//
// poolguard's addition: Gradient2 itself ignores drops. A window with errors (failed server logins,
// 53300 "too many clients" among them) multiplies the limit by `error_backoff` (AIMD's multiplicative
// decrease, as the library's AIMD and Vegas limits do on a drop), then clamps.
//
// The effective limit is floor(estimate) within [min_limit, max_limit]. The pool sets max_limit to its
// budget (pool_size, or fewer when the database view sees the slots taken by others) and min_limit to
// max(1, min_pool_size).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

namespace poolguard::pool {

struct AdaptiveLimitSettings {
    double smoothing = 0.2;  // weight of the new estimate per window (0 < s <= 1); higher moves faster
    double rtt_tolerance =
        1.5;                  // latency may rise to this multiple of the long-term average before shrinking
    int long_window = 2400;   // windows in the long-term latency average (EMA factor 2 / (n + 1))
    int long_warmup = 10;     // first windows averaged plainly before the EMA takes over
    double queue_size = 2.0;  // connections added on top of limit * gradient each window
    double error_backoff = 0.9;  // limit multiplier after a window with errors (0 < b <= 1)
    int min_limit = 1;
    int max_limit = 20;
    int initial_limit = 1;  // clamped to [min_limit, max_limit]
};

// What one window measured. Latency is the mean query time (query sent -> ReadyForQuery) of the queries
// that finished in the window; inflight is the peak number of server connections in use during it.
struct LatencyWindow {
    uint64_t samples = 0;
    double mean_latency_us = 0;
    int inflight = 0;
    uint64_t errors = 0;
};

class AdaptiveLimit {
  public:
    explicit AdaptiveLimit(const AdaptiveLimitSettings& settings = {});

    // New parameters (configuration reload) keep the learned state; the estimate is re-clamped.
    void configure(const AdaptiveLimitSettings& settings);
    // New bounds (budget changed). max below min is raised to min: the pool always keeps one connection.
    void set_bounds(int min_limit, int max_limit);

    // The database refused a connection beyond `servers` (53300): the limit drops to that at once (still
    // within the bounds) instead of waiting for the window's error backoff.
    void cap(int servers);

    // Feeds one closed window; returns the new limit.
    int on_window(const LatencyWindow& window);

    int limit() const;  // floor(estimate) within [min_limit, max_limit]
    double estimate() const { return estimate_; }
    int min_limit() const { return settings_.min_limit; }
    int max_limit() const { return settings_.max_limit; }
    double short_rtt_us() const { return short_rtt_us_; }
    double long_rtt_us() const { return long_rtt_us_; }
    double gradient() const { return gradient_; }
    uint64_t windows() const { return windows_; }
    const AdaptiveLimitSettings& settings() const { return settings_; }

    // Whether a move from `from` to `to` is worth a log/journal line: at least 2 connections and 20 %,
    // or reaching a bound. Steady jitter of one connection is not.
    static bool meaningful_change(int from, int to, int min_limit, int max_limit);

  private:
    void update_long_rtt(double rtt_us);
    void clamp_estimate();

    AdaptiveLimitSettings settings_;
    double estimate_ = 1;
    double short_rtt_us_ = 0;
    double long_rtt_us_ = 0;
    double gradient_ = 1;
    uint64_t windows_ = 0;
    uint64_t long_count_ = 0;
};

// Cuts a pool's running totals into windows. A window closes at a poll where it is at least `min_window`
// old and holds `window_samples` queries, or is `max_window` old with at least one query or error (an
// empty window restarts: an idle pool teaches nothing).
class LatencyWindowCollector {
  public:
    using TimePoint = std::chrono::steady_clock::time_point;
    struct Totals {
        uint64_t queries = 0;
        uint64_t query_time_us = 0;
        uint64_t errors = 0;
    };

    void configure(std::chrono::microseconds min_window, std::chrono::microseconds max_window,
                   uint64_t window_samples);
    // Starts the first window (or restarts after a pause in measuring).
    void start(TimePoint now, const Totals& totals);
    // `peak_inflight` is the highest number of servers in use since the last poll that closed a window
    // (the caller resets its peak when a window is returned).
    std::optional<LatencyWindow> poll(TimePoint now, const Totals& totals, int peak_inflight);
    bool started() const { return started_; }

  private:
    std::chrono::microseconds min_window_{250'000};
    std::chrono::microseconds max_window_{1'000'000};
    uint64_t window_samples_ = 100;
    bool started_ = false;
    TimePoint since_{};
    Totals at_start_;
};

}  // namespace poolguard::pool
