// Owns the assessment rules (what counts as long/idle/leaking, the verdict) and their text/JSON rendering.
#include "ops/diagnosis.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "dbview/duration.h"

namespace poolguard::ops {

namespace {

using dbview::format_age;
using dbview::Session;
using dbview::SessionState;

constexpr size_t kTopN = 5;
constexpr size_t kListN = 5;

std::vector<std::pair<std::string, int>> top(const std::map<std::string, int>& counts, size_t n) {
    std::vector<std::pair<std::string, int>> v(counts.begin(), counts.end());
    std::stable_sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    if (v.size() > n) v.resize(n);
    return v;
}

SessionLine line_of(const Session& s, double age) {
    return SessionLine{
        s.id, s.user, s.database, s.application, s.client_addr, s.state_text, s.query.substr(0, 200), age};
}

void oldest_first(std::vector<SessionLine>& v) {
    std::sort(v.begin(), v.end(), [](const auto& a, const auto& b) { return a.age_s > b.age_s; });
}

std::string iso_utc(std::chrono::system_clock::time_point tp) {
    const std::time_t t = std::chrono::system_clock::to_time_t(tp);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

nlohmann::json lines_json(const std::vector<SessionLine>& v) {
    auto out = nlohmann::json::array();
    for (const auto& l : v)
        out.push_back({{"id", l.id},
                       {"user", l.user},
                       {"database", l.database},
                       {"application", l.application},
                       {"client_addr", l.client_addr},
                       {"state", l.state},
                       {"age_s", std::round(l.age_s * 10) / 10},
                       {"query", l.query}});
    return out;
}

nlohmann::json pairs_json(const std::vector<std::pair<std::string, int>>& v) {
    auto out = nlohmann::json::array();
    for (const auto& [name, n] : v)
        out.push_back({{"name", name}, {"connections", n}});
    return out;
}

std::string pairs_text(const std::vector<std::pair<std::string, int>>& v) {
    std::string out;
    for (const auto& [name, n] : v)
        out += fmt::format("{}{} {}", out.empty() ? "" : " · ", name, n);
    return out.empty() ? "-" : out;
}

std::string one_line_query(std::string q, size_t max) {
    std::replace(q.begin(), q.end(), '\n', ' ');
    std::replace(q.begin(), q.end(), '\t', ' ');
    if (q.size() > max) q = q.substr(0, max - 3) + "...";
    return q;
}

void append_lines(std::string& out, const std::string& title, const std::vector<SessionLine>& v,
                  const std::string& verb) {
    out += fmt::format("{}: {}\n", title, v.size());
    for (size_t i = 0; i < v.size() && i < kListN; ++i) {
        const auto& l = v[i];
        std::string row =
            fmt::format("  {:>7}  {}@{}  app={}  from={}  {} {}  {}", l.id, l.user.empty() ? "?" : l.user,
                        l.database.empty() ? "-" : l.database, l.application.empty() ? "-" : l.application,
                        l.client_addr.empty() ? "local" : l.client_addr, verb, format_age(l.age_s),
                        one_line_query(l.query, 60));
        while (!row.empty() && row.back() == ' ')
            row.pop_back();
        out += row + "\n";
    }
    if (v.size() > kListN) out += fmt::format("  ... and {} more (--json lists all)\n", v.size() - kListN);
}

}  // namespace

std::string to_string(Verdict v) {
    switch (v) {
        case Verdict::healthy:
            return "healthy";
        case Verdict::warning:
            return "warning";
        case Verdict::critical:
            return "critical";
    }
    return "healthy";
}

std::string shell_quote(const std::string& word) {
    if (!word.empty() &&
        word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                               "@%+=:,./-_") == std::string::npos)
        return word;
    std::string out = "'";
    for (char c : word)
        out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

Diagnosis diagnose(const dbview::Snapshot& snap, const std::string& redacted_dsn,
                   const DiagnosisLimits& limits) {
    Diagnosis d;
    d.engine = snap.engine;
    d.server_version = snap.server_version;
    d.target = redacted_dsn;
    d.taken_at = iso_utc(snap.taken_at);
    d.max_connections = snap.max_connections;
    d.reserved_connections = snap.reserved_connections;
    d.usable = snap.usable();
    d.used = snap.used();
    d.utilization = snap.utilization();
    for (const auto& [state, n] : snap.count_by_state())
        d.by_state.emplace_back(state, n);
    std::stable_sort(d.by_state.begin(), d.by_state.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });

    std::map<std::string, int> apps, users, hosts;
    for (const auto& s : snap.sessions) {
        if (s.system || s.replication) continue;
        if (!s.own) {
            ++apps[s.application.empty() ? "(none)" : s.application];
            ++users[s.user.empty() ? "(none)" : s.user];
            ++hosts[s.client_addr.empty() ? "local" : s.client_addr];
        }
        if (s.own) continue;
        if (s.state == SessionState::active && s.query_age_s && *s.query_age_s > limits.long_running_s)
            d.long_running.push_back(line_of(s, *s.query_age_s));
        if (s.state == SessionState::idle && s.state_age_s && *s.state_age_s > limits.idle_s)
            d.idle.push_back(line_of(s, *s.state_age_s));
        if ((s.state == SessionState::idle_in_transaction ||
             s.state == SessionState::idle_in_transaction_aborted) &&
            s.state_age_s && *s.state_age_s > limits.idle_in_transaction_s)
            d.idle_in_transaction.push_back(line_of(s, *s.state_age_s));
    }
    d.top_applications = top(apps, kTopN);
    d.top_users = top(users, kTopN);
    d.top_client_hosts = top(hosts, kTopN);
    oldest_first(d.long_running);
    oldest_first(d.idle);
    oldest_first(d.idle_in_transaction);

    const int pct = static_cast<int>(std::lround(d.utilization * 100));
    if (d.usable > 0 && d.used > d.usable)
        d.reasons.push_back(
            fmt::format("{}/{} usable slots in use: {} connections are in the superuser reserve", d.used,
                        d.usable, d.used - d.usable));
    if (d.utilization >= limits.critical_utilization) {
        d.verdict = Verdict::critical;
        d.reasons.push_back(fmt::format("utilization {}% of usable slots (critical at {:.0f}%)", pct,
                                        limits.critical_utilization * 100));
    } else if (d.utilization >= limits.warning_utilization) {
        d.verdict = Verdict::warning;
        d.reasons.push_back(fmt::format("utilization {}% of usable slots (warning at {:.0f}%)", pct,
                                        limits.warning_utilization * 100));
    }
    auto at_least_warning = [&](std::string why) {
        if (d.verdict == Verdict::healthy) d.verdict = Verdict::warning;
        d.reasons.push_back(std::move(why));
    };
    if (!d.idle_in_transaction.empty())
        at_least_warning(fmt::format("{} {} idle in transaction > {} (leak? they hold locks and slots)",
                                     d.idle_in_transaction.size(),
                                     d.idle_in_transaction.size() == 1 ? "session" : "sessions",
                                     format_age(limits.idle_in_transaction_s)));
    if (!d.long_running.empty())
        at_least_warning(fmt::format("{} {} running > {}", d.long_running.size(),
                                     d.long_running.size() == 1 ? "query" : "queries",
                                     format_age(limits.long_running_s)));
    if (d.verdict != Verdict::healthy && !d.idle.empty())
        d.reasons.push_back(fmt::format("{} {} idle > {} can be reclaimed", d.idle.size(),
                                        d.idle.size() == 1 ? "session" : "sessions",
                                        format_age(limits.idle_s)));
    if (d.reasons.empty()) d.reasons.push_back(fmt::format("utilization {}% of usable slots", pct));

    const std::string target = shell_quote(d.target);
    if (d.verdict == Verdict::healthy) {
        d.next_command = "poolguard watch " + target;
    } else if (!d.idle.empty() || !d.long_running.empty() || !d.idle_in_transaction.empty()) {
        d.next_command = "poolguard recover " + target + " --kill-idle 5m --cancel-long 2m --kill-leak 1m";
        d.next_command += "   # dry run; add --execute to act";
    } else {
        d.next_command =
            "poolguard watch " + target +
            "   # nothing to reclaim: slots are busy with short work; scale the pool or max_connections";
    }
    return d;
}

nlohmann::json to_json(const Diagnosis& d, const std::optional<TrendReport>& trend) {
    nlohmann::json by_state = nlohmann::json::object();
    for (const auto& [state, n] : d.by_state)
        by_state[state] = n;
    nlohmann::json j = {
        {"engine", dbview::to_string(d.engine)},
        {"server_version", d.server_version},
        {"target", d.target},
        {"taken_at", d.taken_at},
        {"max_connections", d.max_connections},
        {"reserved_connections", d.reserved_connections},
        {"usable_connections", d.usable},
        {"used_connections", d.used},
        {"utilization", std::round(d.utilization * 1000) / 1000},
        {"by_state", by_state},
        {"top_applications", pairs_json(d.top_applications)},
        {"top_users", pairs_json(d.top_users)},
        {"top_client_hosts", pairs_json(d.top_client_hosts)},
        {"long_running", lines_json(d.long_running)},
        {"idle", lines_json(d.idle)},
        {"idle_in_transaction", lines_json(d.idle_in_transaction)},
        {"verdict", to_string(d.verdict)},
        {"reasons", d.reasons},
        {"next_command", d.next_command},
    };
    if (trend) {
        nlohmann::json t = {{"pattern", to_string(trend->pattern)},
                            {"slope_per_min", std::round(trend->slope_per_min * 100) / 100},
                            {"explanation", trend->explanation}};
        t["minutes_to_exhaustion"] = trend->minutes_to_exhaustion
                                         ? nlohmann::json(std::round(*trend->minutes_to_exhaustion * 10) / 10)
                                         : nlohmann::json(nullptr);
        j["trend"] = t;
        j["pattern"] = to_string(trend->pattern);
    }
    return j;
}

std::string utilization_bar(double utilization, int width) {
    const double clamped = std::clamp(utilization, 0.0, 1.0);
    const int filled = static_cast<int>(std::lround(clamped * width));
    std::string bar = "[" + std::string(static_cast<size_t>(filled), '#') +
                      std::string(static_cast<size_t>(width - filled), '-') + "]";
    if (utilization > 1.0) bar += "!";
    return bar + fmt::format(" {:.0f}%", utilization * 100);
}

std::string render_text(const Diagnosis& d, const std::optional<TrendReport>& trend) {
    std::string out;
    std::string verdict = to_string(d.verdict);
    std::transform(verdict.begin(), verdict.end(), verdict.begin(),
                   [](unsigned char c) { return std::toupper(c); });
    out += fmt::format("{} {} at {}  ({})\n",
                       d.engine == dbview::Engine::postgres ? "PostgreSQL" : "MySQL/MariaDB",
                       d.server_version, d.target, d.taken_at);
    out += fmt::format("VERDICT: {} — {}\n", verdict, d.reasons.front());
    for (size_t i = 1; i < d.reasons.size(); ++i)
        out += fmt::format("         {}\n", d.reasons[i]);
    out += fmt::format("Slots:   {} {}/{} usable (max_connections {}, reserved {})\n",
                       utilization_bar(d.utilization), d.used, d.usable, d.max_connections,
                       d.reserved_connections);
    out += fmt::format("States:  {}\n", pairs_text(d.by_state));
    if (trend) out += fmt::format("Trend:   {}\n", trend->explanation);
    out += fmt::format("Top applications: {}\n", pairs_text(d.top_applications));
    out += fmt::format("Top users:        {}\n", pairs_text(d.top_users));
    out += fmt::format("Top client hosts: {}\n", pairs_text(d.top_client_hosts));
    append_lines(out, "Queries running > 2m", d.long_running, "running");
    append_lines(out, "Idle > 5m", d.idle, "idle");
    append_lines(out, "Idle in transaction > 1m", d.idle_in_transaction, "idle in tx");
    out += fmt::format("NEXT:    {}\n", d.next_command);
    return out;
}

}  // namespace poolguard::ops
