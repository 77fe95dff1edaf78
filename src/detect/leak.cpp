// Owns the connection-leak rules (see leak.h).
#include "detect/leak.h"

#include <fmt/format.h>

#include <algorithm>

namespace poolguard::detect {

Finding LeakDetector::update(const PoolerSample& s) {
    window_.push_back(s);
    while (window_.size() > 2 && s.t - window_.front().t > settings_.window_s)
        window_.pop_front();
    const PoolerSample& first = window_.front();
    const double dt = s.t - first.t;
    const double xacts = static_cast<double>(s.xact_count - std::min(s.xact_count, first.xact_count));
    const double xact_time_s =
        static_cast<double>(s.xact_time_us - std::min(s.xact_time_us, first.xact_time_us)) / 1e6;
    const double lambda = dt > 0 ? xacts / dt : 0.0;
    if (xacts > 0) last_mean_hold_s_ = xact_time_s / xacts;
    const double expected = lambda * last_mean_hold_s_;
    const double excess = s.held - expected;
    const int min_excess = settings_.min_excess > 0 ? settings_.min_excess : 3;

    if (dt <= 0) {  // one sample tells nothing about the arrival rate
    } else if (excess >= min_excess) {
        if (!above_since_) above_since_ = s.t;
        below_since_.reset();
    } else {
        if (!below_since_) below_since_ = s.t;
        above_since_.reset();
    }
    if (above_since_ && s.t - *above_since_ >= settings_.min_duration_s)
        state_ = std::max(state_, excess >= 4.0 * min_excess ? Severity::critical : Severity::warning);
    else if (below_since_ && s.t - *below_since_ >= settings_.min_duration_s)
        state_ = Severity::ok;

    Finding f;
    f.kind = "leak";
    f.subject = f.database = database_;
    f.severity = state_;
    f.summary = fmt::format(
        "{} server connections held, traffic explains {:.1f} ({:.2f} xact/s x {:.1f} ms): {:.1f} leaked",
        s.held, expected, lambda, last_mean_hold_s_ * 1000, excess);
    f.evidence = {{"held", s.held},
                  {"expected", expected},
                  {"excess", excess},
                  {"xact_per_s", lambda},
                  {"mean_hold_s", last_mean_hold_s_},
                  {"min_excess", min_excess}};
    f.attribution = top_groups(s.idle_in_transaction);
    return f;
}

std::vector<Finding> ClientLeakDetector::update(const std::vector<ClientHold>& clients) const {
    std::vector<Finding> out;
    if (threshold_s_ <= 0) return out;
    for (const auto& c : clients) {
        if (!c.idle_in_transaction || c.idle_s < threshold_s_) continue;
        Finding f;
        f.kind = "client_leak";
        f.subject = fmt::format("client C-{}", c.client_id);
        f.database = c.database;
        f.severity = c.idle_s >= 5 * threshold_s_ ? Severity::critical : Severity::warning;
        f.summary = fmt::format(
            "connection leak: {} ({}@{}:{}, application '{}') holds a server idle in transaction for {:.0f} "
            "s "
            "(threshold {:.0f} s); last statement: {}",
            f.subject, c.user, c.address, c.port, c.application, c.idle_s, threshold_s_,
            c.last_statement.empty() ? "(none)" : c.last_statement);
        f.evidence = {{"idle_in_transaction_s", c.idle_s},
                      {"transaction_s", c.xact_s},
                      {"threshold_s", threshold_s_},
                      {"backend_pid", c.backend_pid}};
        f.attribution = {{"application", c.application},
                         {"user", c.user},
                         {"address", fmt::format("{}:{}", c.address, c.port)},
                         {"last_statement", c.last_statement}};
        out.push_back(std::move(f));
    }
    return out;
}

}  // namespace poolguard::detect
