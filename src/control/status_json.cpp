// Owns the JSON of /api/v1/status and the grouping of sessions (see status_json.h).
#include "control/status_json.h"

#include <algorithm>

#include "control/journal.h"

namespace poolguard::control {

detect::GroupCounts group_sessions(const dbview::Snapshot& snap) {
    detect::GroupCounts g;
    for (const auto& s : snap.sessions) {
        if (s.system || s.replication) continue;
        ++g.by_application[s.application];
        ++g.by_user[s.user];
        ++g.by_address[s.client_addr.empty() ? "local" : s.client_addr];
    }
    return g;
}

nlohmann::json status_json(const ControlStatus& st) {
    nlohmann::json j;
    nlohmann::json pools = nlohmann::json::array();
    for (const auto& p : st.proxy.pools)
        pools.push_back({{"database", p.database},
                         {"user", p.user},
                         {"cl_active", p.cl_active},
                         {"cl_waiting", p.cl_waiting},
                         {"sv_active", p.sv_active},
                         {"sv_idle", p.sv_idle},
                         {"sv_used", p.sv_used},
                         {"maxwait_s", static_cast<double>(p.maxwait_us) / 1e6},
                         {"pool_mode", p.pool_mode},
                         {"paused", p.paused}});
    j["pools"] = pools;
    nlohmann::json classes = nlohmann::json::array();  // issue 6: priority classes per pool
    for (const auto& k : st.proxy.classes)
        classes.push_back({{"database", k.database},
                           {"user", k.user},
                           {"class", k.name},
                           {"priority", k.priority},
                           {"max_share", k.max_share},
                           {"max_servers", k.cap},
                           {"cl_waiting", k.cl_waiting},
                           {"sv_active", k.sv_active},
                           {"maxwait_s", static_cast<double>(k.maxwait_us) / 1e6}});
    j["classes"] = classes;
    nlohmann::json breakers = nlohmann::json::array();  // issue 6: circuit breaker per database
    for (const auto& b : st.proxy.breakers)
        breakers.push_back({{"database", b.database},
                            {"state", b.state},
                            {"opens", b.opens},
                            {"state_seconds", static_cast<double>(b.since_us) / 1e6},
                            {"reason", b.reason}});
    j["breakers"] = breakers;
    nlohmann::json adaptive = nlohmann::json::array();  // issue 6 part 4: adaptive pool size per pool
    for (const auto& a : st.proxy.adaptive)
        if (a.enabled)
            adaptive.push_back({{"database", a.database},
                                {"user", a.user},
                                {"limit", a.limit},
                                {"min_limit", a.min_limit},
                                {"budget", a.budget},
                                {"budget_source", a.budget_source},
                                {"servers", a.servers},
                                {"latency_ms", a.latency_ms},
                                {"long_latency_ms", a.long_latency_ms},
                                {"gradient", a.gradient}});
    j["adaptive"] = adaptive;
    j["clients"] = st.proxy.clients;
    nlohmann::json dbs = nlohmann::json::array();
    for (const auto& d : st.databases) {
        nlohmann::json v = {{"name", d.name}, {"target", d.target}, {"error", d.error}};
        if (d.snapshot) {
            const auto& s = *d.snapshot;
            v["server_version"] = s.server_version;
            v["max_connections"] = s.max_connections;
            v["reserved_connections"] = s.reserved_connections;
            v["usable"] = s.usable();
            v["used"] = s.used();
            v["utilization"] = s.utilization();
            v["overcommitted"] = std::max(0, s.used() - s.usable());
            v["by_state"] = s.count_by_state();
            auto g = group_sessions(s);
            v["by_application"] = g.by_application;
            v["by_user"] = g.by_user;
            v["by_address"] = g.by_address;
            const dbview::Session* longest = nullptr;
            double oldest_iit = 0, oldest_idle = 0;
            for (const auto& x : s.sessions) {
                if (x.system || x.own) continue;
                if (x.state == dbview::SessionState::active && x.query_age_s &&
                    (!longest || *x.query_age_s > *longest->query_age_s))
                    longest = &x;
                if (x.state == dbview::SessionState::idle_in_transaction && x.state_age_s)
                    oldest_iit = std::max(oldest_iit, *x.state_age_s);
                if (x.state == dbview::SessionState::idle && x.state_age_s)
                    oldest_idle = std::max(oldest_idle, *x.state_age_s);
            }
            if (longest)
                v["longest_query"] = {{"pid", longest->id},
                                      {"application", longest->application},
                                      {"user", longest->user},
                                      {"seconds", *longest->query_age_s},
                                      {"query", longest->query}};
            v["oldest_idle_in_transaction_s"] = oldest_iit;
            v["oldest_idle_s"] = oldest_idle;
        }
        dbs.push_back(std::move(v));
    }
    j["databases"] = dbs;
    nlohmann::json det = nlohmann::json::array();
    for (const auto& f : st.findings)
        det.push_back(finding_to_json(f));
    j["detectors"] = det;
    return j;
}

}  // namespace poolguard::control
