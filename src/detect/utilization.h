// Owns the utilization rule: how full the database's usable connection slots are.
#pragma once

#include <optional>

#include "detect/sample.h"

namespace poolguard::detect {

// Rule: utilization u = used / usable. Warning when u >= warning_ratio, critical when u >= critical_ratio,
// each only after it has held for min_duration_s (every sample of that span at or above the threshold).
// A level clears the same way: only after u has stayed below its threshold for min_duration_s, so one
// sample that dips does not resolve an alert (hysteresis). With min_duration_s = 0, one sample decides.
class UtilizationDetector {
  public:
    struct Settings {
        double warning_ratio = 0.8;
        double critical_ratio = 0.9;
        double min_duration_s = 5;
    };
    UtilizationDetector(std::string database, Settings settings)
        : database_(std::move(database)), settings_(settings) {}

    Finding update(const DbSample& sample);
    Severity state() const { return state_; }

  private:
    std::string database_;
    Settings settings_;
    Severity state_ = Severity::ok;
    // Start of the current run of samples at/above (above_) or below (below_) each threshold.
    std::optional<double> above_since_[2], below_since_[2];
};

}  // namespace poolguard::detect
