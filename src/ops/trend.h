// Owns the simple pattern classifier behind `diagnose --watch` and `watch`: least-squares slope of used
// connections, minutes until the usable slots run out, and gradual / spike / leak / steady. Sans-I/O.
// The control plane's detectors (src/detect) are meant to replace this once both branches are merged.
#pragma once

#include <deque>
#include <optional>
#include <string>

namespace poolguard::ops {

struct TrendSample {
    double t_s = 0;  // seconds since any fixed origin (monotonic)
    int used = 0;
    int usable = 0;
    int idle_in_transaction = 0;
};

enum class Pattern { unknown, steady, gradual, spike, leak };
std::string to_string(Pattern p);

struct TrendReport {
    Pattern pattern = Pattern::unknown;           // unknown until there are at least 3 samples
    double slope_per_min = 0;                     // used connections gained per minute (least squares)
    std::optional<double> minutes_to_exhaustion;  // when slope > 0 and not yet exhausted
    double rise_last_minute = 0;                  // used now minus the minimum within the last 60 s
    double itx_slope_per_min = 0;                 // idle-in-transaction gained per minute
    std::string explanation;                      // one line for humans
};

class Trend {
  public:
    // Keeps samples from the last `window_s` seconds.
    explicit Trend(double window_s = 900) : window_s_(window_s) {}
    void add(TrendSample sample);
    TrendReport report() const;
    size_t size() const { return samples_.size(); }

  private:
    double window_s_;
    std::deque<TrendSample> samples_;
};

}  // namespace poolguard::ops
