// Owns the recovery planner's rules and protections.
#include "dbview/recover_plan.h"

#include <algorithm>

#include "config/classes.h"
#include "dbview/duration.h"

namespace poolguard::dbview {

namespace {

struct Candidate {
    ActionKind kind;
    std::string reason;
};

std::optional<Candidate> match_rule(const Session& s, const RecoverPolicy& p) {
    auto over = [](const std::optional<double>& age, const std::optional<double>& limit) {
        return age && limit && *age > *limit;
    };
    auto why = [](const std::string& what, double age, double limit) {
        return what + " for " + format_age(age) + " (limit " + format_age(limit) + ")";
    };
    switch (s.state) {
        case SessionState::active:
        case SessionState::fastpath:
            if (over(s.query_age_s, p.terminate_long_after_s))
                return Candidate{ActionKind::terminate,
                                 why("query running", *s.query_age_s, *p.terminate_long_after_s)};
            if (over(s.query_age_s, p.cancel_long_after_s))
                return Candidate{ActionKind::cancel,
                                 why("query running", *s.query_age_s, *p.cancel_long_after_s)};
            return std::nullopt;
        case SessionState::idle:
            if (over(s.state_age_s, p.kill_idle_after_s))
                return Candidate{ActionKind::terminate, why("idle", *s.state_age_s, *p.kill_idle_after_s)};
            return std::nullopt;
        case SessionState::idle_in_transaction:
        case SessionState::idle_in_transaction_aborted:
            if (over(s.state_age_s, p.kill_leak_after_s))
                return Candidate{ActionKind::terminate,
                                 why("idle in transaction", *s.state_age_s, *p.kill_leak_after_s)};
            return std::nullopt;
        case SessionState::disabled:
        case SessionState::other:
            return std::nullopt;
    }
    return std::nullopt;
}

std::optional<std::string> protection_of(const Session& s, const RecoverPolicy& p) {
    if (s.own) return "own connection";
    if (s.replication) return "replication";
    if (s.system) return "system session";
    if (s.superuser) return "superuser";
    for (const auto& g : p.protect_users)
        if (glob_match(g, s.user)) return "protected user '" + g + "'";
    for (const auto& g : p.protect_apps)
        if (glob_match(g, s.application)) return "protected application '" + g + "'";
    return std::nullopt;
}

}  // namespace

std::string to_string(ActionKind kind) {
    return kind == ActionKind::cancel ? "cancel" : "terminate";
}

bool glob_match(const std::string& pattern, const std::string& text) {
    return config::glob_match(pattern, text);
}

RecoverPlan plan_recovery(const Snapshot& snapshot, const RecoverPolicy& policy) {
    RecoverPlan plan;
    for (const auto& s : snapshot.sessions) {
        auto candidate = match_rule(s, policy);
        if (!candidate) continue;
        if (auto protection = protection_of(s, policy)) {
            plan.spared.push_back(SparedSession{s.id, *protection, candidate->reason, s.user, s.application});
            continue;
        }
        plan.actions.push_back(RecoverAction{candidate->kind, s.id, candidate->reason, s.user, s.application,
                                             s.client_addr, s.query});
    }
    auto by_id = [](const auto& a, const auto& b) { return a.session_id < b.session_id; };
    std::sort(plan.actions.begin(), plan.actions.end(), by_id);
    std::sort(plan.spared.begin(), plan.spared.end(), by_id);
    return plan;
}

}  // namespace poolguard::dbview
