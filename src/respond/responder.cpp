// Owns the responders' decision rules: episodes, protections, poolguard's own servers first, the grace
// escalation and the rate limit (see responder.h).
#include "respond/responder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "dbview/duration.h"

namespace poolguard::respond {

namespace {

// A decision that did not take effect (the backend is still there in the same episode) is retried after this.
constexpr double kRetryAfterS = 30;

dbview::RecoverPolicy policy_for(ResponderKind kind, const ResponderSettings& s) {
    dbview::RecoverPolicy p;
    p.protect_users = s.protect_users;
    p.protect_apps = s.protect_applications;
    p.protect_apps.push_back(kOwnApplicationGlob);
    switch (kind) {
        case ResponderKind::terminate_idle:
            p.kill_idle_after_s = s.kill_idle_after_s;
            break;
        case ResponderKind::cancel_long:
            p.cancel_long_after_s = s.cancel_long_after_s;
            break;
        case ResponderKind::end_leaks:
            p.kill_leak_after_s = s.kill_leak_after_s;
            break;
    }
    return p;
}

// The age the rule of `kind` compares, and its limit.
std::pair<double, double> age_and_limit(ResponderKind kind, const dbview::Session& s,
                                        const ResponderSettings& set) {
    switch (kind) {
        case ResponderKind::terminate_idle:
            return {s.state_age_s.value_or(0), set.kill_idle_after_s};
        case ResponderKind::cancel_long:
            return {s.query_age_s.value_or(0), set.cancel_long_after_s};
        case ResponderKind::end_leaks:
            return {s.state_age_s.value_or(0), set.kill_leak_after_s};
    }
    return {0, 0};
}

int priority(ActionType t) {
    return t == ActionType::close_pool_server ? 0 : 1;
}

}  // namespace

std::string to_string(ActionType type) {
    switch (type) {
        case ActionType::cancel_backend:
            return "cancel";
        case ActionType::terminate_backend:
            return "terminate";
        case ActionType::close_pool_server:
            return "close_pool_server";
        case ActionType::end_client:
            return "end_client";
    }
    return "";
}

Mode Modes::of(ResponderKind kind) const {
    switch (kind) {
        case ResponderKind::terminate_idle:
            return terminate_idle;
        case ResponderKind::cancel_long:
            return cancel_long;
        case ResponderKind::end_leaks:
            return end_leaks;
    }
    return Mode::off;
}

bool ResponderEngine::same_episode(const Memory& m, double episode_start) const {
    // The episode start is now minus an age from the server's clock; sampling latency makes it jitter.
    return std::abs(m.episode_start - episode_start) < 2.0;
}

bool ResponderEngine::take_token(ResponderKind kind, double now_s) {
    auto& w = window_[kind];
    while (!w.empty() && now_s - w.front() >= 60.0)
        w.pop_front();
    if (static_cast<int>(w.size()) >= settings_.max_actions_per_minute) return false;
    w.push_back(now_s);
    return true;
}

Decisions ResponderEngine::decide(const dbview::Snapshot& snapshot, const std::vector<PooledServer>& servers,
                                  const Modes& modes, double now_s) {
    Decisions out;
    std::map<int64_t, const dbview::Session*> sessions;
    for (const auto& s : snapshot.sessions)
        sessions[s.id] = &s;
    for (auto it = memory_.begin(); it != memory_.end();)
        it = sessions.contains(it->first.second) ? std::next(it) : memory_.erase(it);
    std::map<int64_t, const PooledServer*> own;
    for (const auto& srv : servers)
        own[srv.backend_pid] = &srv;
    auto own_server = [&](const dbview::Session& s) -> const PooledServer* {
        auto it = own.find(s.id);
        return it != own.end() && it->second->user == s.user ? it->second : nullptr;
    };

    struct Candidate {
        Decision decision;
        double episode_start;
        bool escalation;
    };
    std::vector<Candidate> candidates;
    for (auto kind : kAllResponders) {
        const Mode mode = modes.of(kind);
        if (mode == Mode::off) continue;
        const auto plan = dbview::plan_recovery(snapshot, policy_for(kind, settings_));
        for (const auto& sp : plan.spared) {
            const auto& s = *sessions.at(sp.session_id);
            const double episode = now_s - age_and_limit(kind, s, settings_).first;
            auto& m = memory_[{kind, sp.session_id}];
            if (m.spared && same_episode(m, episode)) continue;
            m = Memory{episode, now_s, false, true, mode};
            out.spared.push_back(
                Spare{kind, sp.session_id, sp.protection, sp.would_have, sp.user, sp.application});
        }
        for (const auto& a : plan.actions) {
            const auto& s = *sessions.at(a.session_id);
            const auto [age, limit] = age_and_limit(kind, s, settings_);
            const double episode = now_s - age;
            Decision d;
            d.responder = kind;
            d.mode = mode;
            d.pid = a.session_id;
            d.database = s.database;
            d.user = a.user;
            d.application = a.application;
            d.client_addr = a.client_addr;
            d.query = a.query;
            d.reason = a.reason;
            d.age_s = age;
            d.limit_s = limit;
            bool escalation = false;
            if (auto it = memory_.find({kind, a.session_id});
                it != memory_.end() && same_episode(it->second, episode)) {
                const Memory& m = it->second;
                if (m.spared) continue;
                // A dry-run decision does not stop the same session being acted on once the mode is on.
                const bool upgraded = m.mode == Mode::dry_run && mode == Mode::on;
                if (!upgraded) {
                    const bool retry = now_s - m.decided_at >= kRetryAfterS;
                    if (kind == ResponderKind::cancel_long &&
                        ((!m.escalated && now_s - m.decided_at >= settings_.cancel_grace_s) ||
                         (m.escalated && retry)))
                        escalation = true;
                    else if (!retry)
                        continue;
                }
            }
            const PooledServer* srv = own_server(s);
            switch (kind) {
                case ResponderKind::terminate_idle:
                    if (srv && srv->idle_in_pool) {
                        d.type = ActionType::close_pool_server;
                        d.database = srv->database;
                    } else if (srv && srv->client_id != 0) {
                        d.type = ActionType::end_client;
                        d.client_id = srv->client_id;
                        d.client_message =
                            fmt::format("terminated by poolguard: idle for {} s (kill_idle_after)",
                                        static_cast<long long>(age));
                    } else {
                        d.type = ActionType::terminate_backend;
                    }
                    break;
                case ResponderKind::cancel_long:
                    if (escalation) {
                        d.type = ActionType::terminate_backend;
                        d.reason = fmt::format("still running {} after cancel: {}",
                                               dbview::format_age(settings_.cancel_grace_s), a.reason);
                    } else {
                        d.type = ActionType::cancel_backend;
                    }
                    break;
                case ResponderKind::end_leaks:
                    if (srv && srv->client_id != 0) {
                        d.type = ActionType::end_client;
                        d.client_id = srv->client_id;
                        d.client_message = fmt::format(
                            "terminated by poolguard: idle in transaction for {} s (kill_leak_after)",
                            static_cast<long long>(age));
                    } else {
                        d.type = ActionType::terminate_backend;
                    }
                    break;
            }
            candidates.push_back(Candidate{std::move(d), episode, escalation});
        }
    }
    // poolguard's own idle servers go first; within a pool only those beyond min_pool_size.
    std::stable_sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
        return priority(a.decision.type) < priority(b.decision.type);
    });
    std::map<std::pair<std::string, std::string>, int> closing;
    for (auto& c : candidates) {
        auto& d = c.decision;
        const auto key = std::make_pair(d.responder, d.pid);
        if (d.type == ActionType::close_pool_server) {
            const PooledServer* srv = own.at(d.pid);
            int& n = closing[{srv->database, srv->user}];
            if (srv->pool_servers - n <= srv->pool_min_size) {
                memory_[key] = Memory{c.episode_start, now_s, false, true, d.mode};
                out.spared.push_back(
                    Spare{d.responder, d.pid,
                          fmt::format("poolguard server within min_pool_size ({})", srv->pool_min_size),
                          d.reason, d.user, d.application});
                continue;
            }
            ++n;
        }
        if (!take_token(d.responder, now_s)) {
            out.rate_limited.push_back(std::move(d));
            continue;
        }
        memory_[key] = Memory{c.episode_start, now_s, c.escalation, false, d.mode};
        out.actions.push_back(std::move(d));
    }
    return out;
}

}  // namespace poolguard::respond
