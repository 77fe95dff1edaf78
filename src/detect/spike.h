// Owns the sudden-spike rule: many connection slots taken within a short window, and by whom.
#pragma once

#include <deque>
#include <optional>

#include "detect/sample.h"

namespace poolguard::detect {

// Rule: rise = used(now) - min(used over the last window_s). A spike is a rise of at least min_rise
// connections (0 = 10 % of the usable slots, at least 5). Severity: warning; critical when the spike
// leaves fewer than 10 % of the usable slots free. Attribution: the applications, users and client
// addresses that grew most between the lowest sample of the window and now.
// A spike is an event: it stays raised for one window after the last sample that showed it (so a burst
// that is over before anyone looks is still reported), then clears.
class SpikeDetector {
  public:
    struct Settings {
        double window_s = 60;
        int min_rise = 0;
    };
    SpikeDetector(std::string database, Settings settings)
        : database_(std::move(database)), settings_(settings) {}

    Finding update(const DbSample& sample);
    Severity state() const { return state_; }

  private:
    std::string database_;
    Settings settings_;
    std::deque<DbSample> window_;
    Severity state_ = Severity::ok;
    std::optional<double> last_seen_;
    Finding last_;  // the finding at the last sample that showed the spike
};

}  // namespace poolguard::detect
