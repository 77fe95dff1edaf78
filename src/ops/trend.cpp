// Owns the trend arithmetic (least squares, forecast) and the pattern rules.
#include "ops/trend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace poolguard::ops {

namespace {

// Least-squares slope of y over t, per second; 0 when t does not vary.
template <typename Get>
double slope(const std::deque<TrendSample>& xs, Get y) {
    const double n = static_cast<double>(xs.size());
    double st = 0, sy = 0;
    for (const auto& s : xs) {
        st += s.t_s;
        sy += y(s);
    }
    const double mt = st / n, my = sy / n;
    double num = 0, den = 0;
    for (const auto& s : xs) {
        num += (s.t_s - mt) * (y(s) - my);
        den += (s.t_s - mt) * (s.t_s - mt);
    }
    return den > 0 ? num / den : 0;
}

}  // namespace

std::string to_string(Pattern p) {
    switch (p) {
        case Pattern::unknown:
            return "unknown";
        case Pattern::steady:
            return "steady";
        case Pattern::gradual:
            return "gradual";
        case Pattern::spike:
            return "spike";
        case Pattern::leak:
            return "leak";
    }
    return "unknown";
}

void Trend::add(TrendSample sample) {
    samples_.push_back(sample);
    while (!samples_.empty() && samples_.front().t_s < sample.t_s - window_s_)
        samples_.pop_front();
}

TrendReport Trend::report() const {
    TrendReport r;
    if (samples_.size() < 2) {
        r.explanation = "collecting samples";
        return r;
    }
    const auto& last = samples_.back();
    r.slope_per_min = slope(samples_, [](const TrendSample& s) { return static_cast<double>(s.used); }) * 60;
    r.itx_slope_per_min =
        slope(samples_, [](const TrendSample& s) { return static_cast<double>(s.idle_in_transaction); }) * 60;
    int min_recent = last.used;
    for (const auto& s : samples_)
        if (s.t_s >= last.t_s - 60) min_recent = std::min(min_recent, s.used);
    r.rise_last_minute = last.used - min_recent;
    if (r.slope_per_min > 0.01 && last.used < last.usable)
        r.minutes_to_exhaustion = (last.usable - last.used) / r.slope_per_min;
    if (samples_.size() < 3) {
        r.explanation = "collecting samples";
        return r;
    }
    const auto& first = samples_.front();
    const double usable = std::max(1, last.usable);
    // A spike: a fifth of the usable slots (at least 5 connections) gained within one minute.
    const bool spike = r.rise_last_minute >= std::max(5.0, 0.2 * usable);
    // A leak: idle-in-transaction sessions keep piling up (by at least 3 over the window and still rising).
    const bool leak = last.idle_in_transaction - first.idle_in_transaction >= 3 && r.itx_slope_per_min > 0;
    const bool growing = r.slope_per_min >= std::max(0.5, 0.01 * usable);
    char buf[200];
    if (spike) {
        r.pattern = Pattern::spike;
        std::snprintf(buf, sizeof buf, "spike: +%.0f connections within a minute", r.rise_last_minute);
    } else if (leak) {
        r.pattern = Pattern::leak;
        std::snprintf(buf, sizeof buf, "leak: idle-in-transaction sessions growing %.1f/min (%d now)",
                      r.itx_slope_per_min, last.idle_in_transaction);
    } else if (growing) {
        r.pattern = Pattern::gradual;
        std::snprintf(buf, sizeof buf, "gradual: +%.1f connections/min", r.slope_per_min);
    } else {
        r.pattern = Pattern::steady;
        const bool falling = r.slope_per_min <= -std::max(0.5, 0.01 * usable);
        std::snprintf(buf, sizeof buf, "%s: %+.1f connections/min", falling ? "steady (falling)" : "steady",
                      r.slope_per_min);
    }
    r.explanation = buf;
    if (r.minutes_to_exhaustion && r.pattern != Pattern::steady) {
        std::snprintf(buf, sizeof buf, ", full in ~%.0f min", std::ceil(*r.minutes_to_exhaustion));
        r.explanation += buf;
    }
    return r;
}

}  // namespace poolguard::ops
