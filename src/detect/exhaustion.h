// Owns the gradual-exhaustion rule: a fitted trend of used slots and the forecast "usable slots exhausted in
// N minutes".
#pragma once

#include <deque>
#include <optional>

#include "detect/sample.h"

namespace poolguard::detect {

// Least-squares line through used(t) over the last window_s.
struct Trend {
    double slope_per_s = 0;  // connections per second
    double fitted_now = 0;   // the line's value at the newest sample
    double r2 = 0;           // goodness of fit, 0..1
};
std::optional<Trend> fit_trend(const std::deque<std::pair<double, double>>& points);

// Rule: fit used(t) over the last window_s (at least 4 samples spanning at least a quarter of the window).
// When the slope is positive, the fit is good (R^2 >= 0.6) and the rise is gradual (it rose in at least
// three steps and no step between two samples is more than a third of the rise over the window: a jump,
// even one split over two samples, is the spike rule's business), the
// forecast is eta = (usable - used_now) / slope. Warning when eta <= horizon_s, critical when
// eta <= horizon_s / 3. It clears when the forecast is beyond the horizon again (or the trend stops).
class ExhaustionDetector {
  public:
    struct Settings {
        double window_s = 600;
        double horizon_s = 1800;
    };
    ExhaustionDetector(std::string database, Settings settings)
        : database_(std::move(database)), settings_(settings) {}

    Finding update(const DbSample& sample);
    Severity state() const { return state_; }

  private:
    std::string database_;
    Settings settings_;
    std::deque<std::pair<double, double>> points_;  // (t, used)
    Severity state_ = Severity::ok;
};

}  // namespace poolguard::detect
