// Owns the utilization rule (see utilization.h).
#include "detect/utilization.h"

#include <fmt/format.h>

namespace poolguard::detect {

Finding UtilizationDetector::update(const DbSample& s) {
    const double u = s.usable > 0 ? static_cast<double>(s.used) / s.usable : 0.0;
    const double thresholds[2] = {settings_.warning_ratio, settings_.critical_ratio};
    int raise_to = 0;  // highest level held for min_duration
    int keep = 0;      // highest level not yet below its threshold for min_duration
    for (int i = 0; i < 2; ++i) {
        if (u >= thresholds[i]) {
            if (!above_since_[i]) above_since_[i] = s.t;
            below_since_[i].reset();
        } else {
            if (!below_since_[i]) below_since_[i] = s.t;
            above_since_[i].reset();
        }
        if (above_since_[i] && s.t - *above_since_[i] >= settings_.min_duration_s) raise_to = i + 1;
        if (above_since_[i] || (below_since_[i] && s.t - *below_since_[i] < settings_.min_duration_s))
            keep = i + 1;
    }
    const int current = static_cast<int>(state_);
    int next = current;
    if (raise_to > current)
        next = raise_to;
    else if (keep < current)
        next = keep;
    state_ = static_cast<Severity>(next);

    Finding f;
    f.kind = "utilization";
    f.subject = f.database = database_;
    f.severity = state_;
    f.summary = fmt::format("{}/{} usable connection slots used ({:.0f} %{})", s.used, s.usable, u * 100,
                            s.used > s.usable ? fmt::format(", overcommitted {}", s.used - s.usable) : "");
    f.evidence = {{"used", s.used},
                  {"usable", s.usable},
                  {"utilization", u},
                  {"warning_ratio", settings_.warning_ratio},
                  {"critical_ratio", settings_.critical_ratio}};
    f.attribution = top_groups(s.groups);
    return f;
}

}  // namespace poolguard::detect
