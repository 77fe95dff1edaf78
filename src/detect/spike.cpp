// Owns the sudden-spike rule (see spike.h).
#include "detect/spike.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace poolguard::detect {

Finding SpikeDetector::update(const DbSample& s) {
    window_.push_back(s);
    while (!window_.empty() && s.t - window_.front().t > settings_.window_s)
        window_.pop_front();
    const DbSample* low = &window_.front();
    for (const auto& w : window_)
        if (w.used < low->used) low = &w;
    const int min_rise = settings_.min_rise > 0
                             ? settings_.min_rise
                             : std::max(5, static_cast<int>(std::ceil(0.10 * std::max(s.usable, 0))));
    const int rise = s.used - low->used;
    if (rise >= min_rise) {
        const int free_slots = s.usable - s.used;
        const Severity sev =
            free_slots < std::max(1.0, 0.10 * s.usable) ? Severity::critical : Severity::warning;
        state_ = std::max(sev, last_seen_ && s.t - *last_seen_ <= settings_.window_s ? state_ : Severity::ok);
        last_seen_ = s.t;
        last_.kind = "spike";
        last_.subject = last_.database = database_;
        last_.severity = state_;
        last_.summary = fmt::format("{} connections opened within {:.0f} s ({} -> {} of {} usable)", rise,
                                    s.t - low->t, low->used, s.used, s.usable);
        last_.evidence = {{"rise", rise},
                          {"from", low->used},
                          {"to", s.used},
                          {"usable", s.usable},
                          {"over_seconds", s.t - low->t},
                          {"min_rise", min_rise}};
        last_.attribution = top_rises(low->groups, s.groups, std::max(1, min_rise / 5));
        return last_;
    }
    if (state_ != Severity::ok && last_seen_ && s.t - *last_seen_ <= settings_.window_s) return last_;
    state_ = Severity::ok;
    last_seen_.reset();
    Finding f;
    f.kind = "spike";
    f.subject = f.database = database_;
    f.summary = fmt::format("largest rise within {:.0f} s: {}", settings_.window_s, std::max(rise, 0));
    f.evidence = {{"rise", std::max(rise, 0)}, {"min_rise", min_rise}};
    return f;
}

}  // namespace poolguard::detect
