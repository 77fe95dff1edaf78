// Owns the error-pattern rule (see errors.h).
#include "detect/errors.h"

#include <fmt/format.h>

#include <algorithm>

namespace poolguard::detect {

Finding ErrorDetector::update(const ErrorSample& s) {
    // The counters are totals since start: they were zero before the first sample, so errors that
    // happened before it still count.
    if (window_.empty()) window_.push_back(ErrorSample{s.t, 0, 0, 0});
    window_.push_back(s);
    while (window_.size() > 1 && s.t - window_.front().t > 60)
        window_.pop_front();
    const ErrorSample& first = window_.front();
    auto diff = [](uint64_t now, uint64_t then) { return static_cast<double>(now - std::min(now, then)); };
    const double server = diff(s.server_too_many, first.server_too_many);
    const double refused = diff(s.refusals, first.refusals);
    const double logins = diff(s.login_failures, first.login_failures);
    const double w = rate_warning_;
    auto level = [](double n, double threshold) { return n >= 10 * threshold ? 2 : n >= threshold ? 1 : 0; };
    const int l = std::max({level(server, w), level(refused, w), level(logins, 10 * w)});
    state_ = static_cast<Severity>(l);

    Finding f;
    f.kind = "errors";
    f.subject = "poolguard";
    f.severity = state_;
    f.summary = fmt::format(
        "last minute: {:.0f} server refusals (53300), {:.0f} capacity refusals by poolguard, "
        "{:.0f} login failures",
        server, refused, logins);
    f.evidence = {{"server_53300_per_min", server},
                  {"refusals_per_min", refused},
                  {"login_failures_per_min", logins},
                  {"rate_warning", w}};
    if (server >= w) f.attribution.emplace_back("source", "database refuses connections (53300)");
    if (refused >= w) f.attribution.emplace_back("source", "poolguard capacity limits");
    if (logins >= 10 * w) f.attribution.emplace_back("source", "client login failures");
    return f;
}

}  // namespace poolguard::detect
