// Owns the error-pattern rule: connection refusals per minute (53300 from servers, poolguard's own
// capacity refusals, login failures).
#pragma once

#include <deque>

#include "detect/sample.h"

namespace poolguard::detect {

// Rule: counts over the last 60 s. Warning when servers refused logins with 53300 ("sorry, too many
// clients already", "remaining connection slots are reserved ...") or poolguard refused clients for
// capacity at least rate_warning times, or clients failed to log in at least 10 * rate_warning times;
// critical at ten times those counts. Clears when the last minute is below them.
class ErrorDetector {
  public:
    explicit ErrorDetector(int rate_warning) : rate_warning_(rate_warning < 1 ? 1 : rate_warning) {}
    Finding update(const ErrorSample& sample);
    Severity state() const { return state_; }

  private:
    int rate_warning_;
    std::deque<ErrorSample> window_;
    Severity state_ = Severity::ok;
};

}  // namespace poolguard::detect
