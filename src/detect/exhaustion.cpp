// Owns the gradual-exhaustion rule (see exhaustion.h).
#include "detect/exhaustion.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace poolguard::detect {

std::optional<Trend> fit_trend(const std::deque<std::pair<double, double>>& points) {
    const double n = static_cast<double>(points.size());
    if (points.size() < 2) return std::nullopt;
    double sx = 0, sy = 0;
    for (const auto& [x, y] : points) {
        sx += x;
        sy += y;
    }
    const double mx = sx / n, my = sy / n;
    double sxx = 0, sxy = 0, syy = 0;
    for (const auto& [x, y] : points) {
        sxx += (x - mx) * (x - mx);
        sxy += (x - mx) * (y - my);
        syy += (y - my) * (y - my);
    }
    if (sxx <= 0) return std::nullopt;
    Trend t;
    t.slope_per_s = sxy / sxx;
    t.fitted_now = my + t.slope_per_s * (points.back().first - mx);
    t.r2 = syy > 0 ? (sxy * sxy) / (sxx * syy) : 0.0;
    return t;
}

Finding ExhaustionDetector::update(const DbSample& s) {
    points_.emplace_back(s.t, s.used);
    while (!points_.empty() && s.t - points_.front().first > settings_.window_s)
        points_.pop_front();

    Finding f;
    f.kind = "exhaustion_forecast";
    f.subject = f.database = database_;
    f.attribution = top_groups(s.groups);
    const double span = points_.back().first - points_.front().first;
    auto trend = fit_trend(points_);
    double largest_step = 0;
    int rising_steps = 0;
    for (size_t i = 1; i < points_.size(); ++i) {
        const double step = points_[i].second - points_[i - 1].second;
        largest_step = std::max(largest_step, step);
        if (step > 0) ++rising_steps;
    }
    const double rise = points_.back().second - points_.front().second;

    Severity sev = Severity::ok;
    std::optional<double> eta;
    if (trend && points_.size() >= 4 && span >= settings_.window_s / 4 && trend->slope_per_s > 0 &&
        trend->r2 >= 0.6 && rise > 0 && rising_steps >= 3 && largest_step <= rise / 3) {
        eta = std::max(0.0, (s.usable - s.used) / trend->slope_per_s);
        if (*eta <= settings_.horizon_s / 3)
            sev = Severity::critical;
        else if (*eta <= settings_.horizon_s)
            sev = Severity::warning;
    }
    state_ = sev;
    f.severity = sev;
    if (eta)
        f.summary = fmt::format(
            "usable slots exhausted in {} at +{:.1f} connections/min ({}/{} used)",
            *eta < 120 ? fmt::format("{:.0f} seconds", *eta) : fmt::format("{:.0f} minutes", *eta / 60),
            trend->slope_per_s * 60, s.used, s.usable);
    else
        f.summary = fmt::format("no rising trend ({}/{} used)", s.used, s.usable);
    f.evidence = {{"used", s.used}, {"usable", s.usable}, {"samples", static_cast<double>(points_.size())}};
    if (trend) {
        f.evidence.emplace_back("slope_per_min", trend->slope_per_s * 60);
        f.evidence.emplace_back("r2", trend->r2);
    }
    if (eta) f.evidence.emplace_back("eta_minutes", *eta / 60);
    f.evidence.emplace_back("horizon_minutes", settings_.horizon_s / 60);
    return f;
}

}  // namespace poolguard::detect
