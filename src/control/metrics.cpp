// Owns the Prometheus text exposition (see metrics.h).
#include "control/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "common/rejections.h"
#include "common/tls_counters.h"
#include "respond/guard.h"

namespace poolguard::control {

std::string escape_label(const std::string& value) {
    std::string out;
    for (char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

namespace {

class Writer {
  public:
    void family(const std::string& name, const char* type, const char* help) {
        out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
    }
    void sample(const std::string& name, const std::string& labels, double value) {
        out_ += name;
        if (!labels.empty()) out_ += "{" + labels + "}";
        out_ += fmt::format(" {}\n", value);
    }
    std::string take() { return std::move(out_); }

  private:
    std::string out_;
};

std::string lbl(std::initializer_list<std::pair<const char*, std::string>> labels) {
    std::string out;
    for (const auto& [k, v] : labels)
        out += fmt::format("{}{}=\"{}\"", out.empty() ? "" : ",", k, escape_label(v));
    return out;
}

void pool_metrics(Writer& w, const ProxySnapshot& p) {
    struct Col {
        const char* name;
        const char* help;
        double (*get)(const admin::PoolRow&);
    };
    static const Col kCols[] = {
        {"client_active_connections", "Client connections linked to a server or idle with no request",
         [](const admin::PoolRow& r) { return double(r.cl_active); }},
        {"client_waiting_connections", "Client connections waiting for a server",
         [](const admin::PoolRow& r) { return double(r.cl_waiting); }},
        {"server_active_connections", "Server connections linked to a client",
         [](const admin::PoolRow& r) { return double(r.sv_active); }},
        {"server_idle_connections", "Server connections unused and ready for a client",
         [](const admin::PoolRow& r) { return double(r.sv_idle); }},
        {"server_used_connections", "Server connections idle longer than server_check_delay (need a check)",
         [](const admin::PoolRow& r) { return double(r.sv_used); }},
        {"server_testing_connections", "Server connections running server_reset_query or server_check_query",
         [](const admin::PoolRow& r) { return double(r.sv_tested); }},
        {"server_login_connections", "Server connections logging in",
         [](const admin::PoolRow& r) { return double(r.sv_login); }},
        {"client_maxwait_seconds", "Age of the oldest waiting client",
         [](const admin::PoolRow& r) { return double(r.maxwait_us) / 1e6; }},
    };
    for (const auto& c : kCols) {
        const std::string name = std::string("pgbouncer_pools_") + c.name;
        w.family(name, "gauge", c.help);
        for (const auto& r : p.pools)
            w.sample(name, lbl({{"database", r.database}, {"user", r.user}}), c.get(r));
    }
    struct Stat {
        const char* name;
        const char* help;
        double (*get)(const admin::StatsRow&);
    };
    static const Stat kStats[] = {
        {"queries_pooled_total", "Total number of SQL queries pooled",
         [](const admin::StatsRow& r) { return double(r.query_count); }},
        {"queries_duration_seconds_total",
         "Total number of seconds spent by pgbouncer when actively connected to "
         "PostgreSQL, executing queries",
         [](const admin::StatsRow& r) { return double(r.query_time_us) / 1e6; }},
        {"received_bytes_total", "Total volume in bytes of network traffic received by pgbouncer",
         [](const admin::StatsRow& r) { return double(r.bytes_received); }},
        {"sent_bytes_total", "Total volume in bytes of network traffic sent by pgbouncer",
         [](const admin::StatsRow& r) { return double(r.bytes_sent); }},
        {"sql_transactions_pooled_total", "Total number of SQL transactions pooled",
         [](const admin::StatsRow& r) { return double(r.xact_count); }},
        {"server_in_transaction_seconds_total",
         "Total number of seconds spent by pgbouncer when connected to "
         "PostgreSQL in a transaction",
         [](const admin::StatsRow& r) { return double(r.xact_time_us) / 1e6; }},
        {"client_wait_seconds_total", "Time spent by clients waiting for a server, in seconds",
         [](const admin::StatsRow& r) { return double(r.wait_time_us) / 1e6; }},
    };
    for (const auto& s : kStats) {
        const std::string name = std::string("pgbouncer_stats_") + s.name;
        w.family(name, "counter", s.help);
        for (const auto& r : p.stats)
            w.sample(name, lbl({{"database", r.database}}), s.get(r));
    }
}

// Priority classes and circuit breakers (issue 6).
void class_metrics(Writer& w, const ProxySnapshot& p) {
    w.family("poolguard_class_server_connections", "gauge", "Server connections a priority class holds");
    for (const auto& k : p.classes)
        w.sample("poolguard_class_server_connections",
                 lbl({{"database", k.database}, {"user", k.user}, {"class", k.name}}), k.sv_active);
    w.family("poolguard_class_waiting_clients", "gauge", "Clients of a priority class waiting for a server");
    for (const auto& k : p.classes)
        w.sample("poolguard_class_waiting_clients",
                 lbl({{"database", k.database}, {"user", k.user}, {"class", k.name}}), k.cl_waiting);
    w.family("poolguard_class_max_servers", "gauge",
             "Server connections a priority class may hold (max_share of the pool); 0 = no cap");
    for (const auto& k : p.classes)
        w.sample("poolguard_class_max_servers",
                 lbl({{"database", k.database}, {"user", k.user}, {"class", k.name}}), k.cap);
    w.family(
        "poolguard_breaker_state", "gauge",
        "Circuit breaker state per database: 0 closed, 1 half-open, 2 open, 3 restarting (clients wait)");
    for (const auto& b : p.breakers)
        w.sample("poolguard_breaker_state", lbl({{"database", b.database}}),
                 b.state == "open"         ? 2
                 : b.state == "half-open"  ? 1
                 : b.state == "restarting" ? 3
                                           : 0);
    w.family("poolguard_breaker_opens_total", "counter", "Times the circuit breaker of a database opened");
    for (const auto& b : p.breakers)
        w.sample("poolguard_breaker_opens_total", lbl({{"database", b.database}}), double(b.opens));
}

// Adaptive pool size (issue 6 part 4): only pools with adaptive_pool = on.
void adaptive_metrics(Writer& w, const ProxySnapshot& p) {
    struct Gauge {
        const char* name;
        const char* help;
        double (*get)(const admin::AdaptiveRow&);
    };
    static const Gauge kGauges[] = {
        {"poolguard_pool_adaptive_limit", "Server connections the adaptive limit lets the pool use now",
         [](const admin::AdaptiveRow& a) { return double(a.limit); }},
        {"poolguard_pool_adaptive_budget",
         "Ceiling of the adaptive limit: pool_size, or the slots the database view leaves",
         [](const admin::AdaptiveRow& a) { return double(a.budget); }},
        {"poolguard_pool_adaptive_latency_seconds", "Mean query time of the adaptive limit's last window",
         [](const admin::AdaptiveRow& a) { return a.latency_ms / 1000.0; }},
    };
    for (const auto& g : kGauges) {
        w.family(g.name, "gauge", g.help);
        for (const auto& a : p.adaptive)
            if (a.enabled) w.sample(g.name, lbl({{"database", a.database}, {"user", a.user}}), g.get(a));
    }
}

void own_metrics(Writer& w, const ControlStatus& st) {
    const auto& c = st.proxy.counters;
    w.family("poolguard_up", "gauge", "1 while poolguard runs");
    w.sample("poolguard_up", "", 1);
    w.family("poolguard_clients", "gauge", "Client connections registered with poolguard");
    w.sample("poolguard_clients", "", st.proxy.clients);

    w.family("poolguard_client_wait_seconds", "histogram", "How long clients waited for a server connection");
    uint64_t cumulative = 0;
    for (size_t i = 0; i < DataPlaneCounters::kWaitBuckets.size(); ++i) {
        cumulative += c.wait_bucket[i];
        w.sample("poolguard_client_wait_seconds_bucket",
                 fmt::format("le=\"{}\"", DataPlaneCounters::kWaitBuckets[i]), double(cumulative));
    }
    cumulative += c.wait_bucket.back();
    w.sample("poolguard_client_wait_seconds_bucket", "le=\"+Inf\"", double(cumulative));
    w.sample("poolguard_client_wait_seconds_sum", "", double(c.wait_sum_us) / 1e6);
    w.sample("poolguard_client_wait_seconds_count", "", double(c.wait_count));

    w.family("poolguard_refusals_total", "counter", "Clients poolguard refused for capacity, by reason");
    w.sample("poolguard_refusals_total", "reason=\"max_client_conn\"", double(c.refused_max_client_conn));
    w.sample("poolguard_refusals_total", "reason=\"query_wait_timeout\"",
             double(c.refused_query_wait_timeout));
    w.sample("poolguard_refusals_total", "reason=\"server_error\"", double(c.refused_server_error));
    w.sample("poolguard_refusals_total", "reason=\"circuit_breaker\"", double(c.refused_breaker));
    w.family("poolguard_client_rejections_total", "counter",
             "Connections refused before login (bad startup packet, protocol, cancel, login timeout, flood)");
    for (size_t i = 0; i < kRejectionCount; ++i)
        w.sample("poolguard_client_rejections_total",
                 std::string("reason=\"") + to_string(static_cast<Rejection>(i)) + "\"",
                 double(c.client_rejections[i]));
    w.family("poolguard_clients_parked", "gauge",
             "Idle client connections parked: no coroutine, a readiness callback restarts their relay");
    w.sample("poolguard_clients_parked", "", double(c.clients_parked));
    w.family("poolguard_client_login_failures_total", "counter", "Client logins that failed");
    w.sample("poolguard_client_login_failures_total", "", double(c.client_login_failures));
    w.family("poolguard_server_login_failures_total", "counter", "Server logins that failed");
    w.sample("poolguard_server_login_failures_total", "", double(c.server_login_failures));
    w.family("poolguard_server_too_many_clients_total", "counter",
             "Server logins the database refused with SQLSTATE 53300");
    w.sample("poolguard_server_too_many_clients_total", "", double(c.server_too_many_clients));

    // TLS handshakes (issue 14): relaxed atomics, read directly (they are not part of the 1 s snapshot).
    const TlsCounters& tls = tls_counters();
    w.family("poolguard_tls_handshakes_total", "counter",
             "TLS handshakes by side (client, server) and outcome");
    for (const auto& [side, s] : {std::pair{"client", &tls.client}, std::pair{"server", &tls.server}}) {
        w.sample("poolguard_tls_handshakes_total", fmt::format("side=\"{}\",outcome=\"ok\"", side),
                 double(s->ok.load(std::memory_order_relaxed)));
        w.sample("poolguard_tls_handshakes_total", fmt::format("side=\"{}\",outcome=\"failed\"", side),
                 double(s->failed.load(std::memory_order_relaxed)));
    }
    w.family("poolguard_tls_handshake_seconds", "histogram", "TLS handshake time, by side");
    for (const auto& [side, s] : {std::pair{"client", &tls.client}, std::pair{"server", &tls.server}}) {
        uint64_t total = 0;
        for (size_t i = 0; i < TlsCounters::kBuckets.size(); ++i) {
            total += s->bucket[i].load(std::memory_order_relaxed);
            w.sample("poolguard_tls_handshake_seconds_bucket",
                     fmt::format("side=\"{}\",le=\"{}\"", side, TlsCounters::kBuckets[i]), double(total));
        }
        total += s->bucket.back().load(std::memory_order_relaxed);
        w.sample("poolguard_tls_handshake_seconds_bucket", fmt::format("side=\"{}\",le=\"+Inf\"", side),
                 double(total));
        w.sample("poolguard_tls_handshake_seconds_sum", fmt::format("side=\"{}\"", side),
                 double(s->sum_us.load(std::memory_order_relaxed)) / 1e6);
        w.sample("poolguard_tls_handshake_seconds_count", fmt::format("side=\"{}\"", side), double(total));
    }

    // The database view.
    w.family("poolguard_db_up", "gauge", "1 when the last sample of the database's connections worked");
    for (const auto& d : st.databases)
        w.sample("poolguard_db_up", lbl({{"database", d.name}}), d.error.empty() && d.snapshot ? 1 : 0);
    w.family("poolguard_db_connections", "gauge",
             "Client connections of the database by state (pg_stat_activity)");
    for (const auto& d : st.databases) {
        if (!d.snapshot) continue;
        auto by_state = d.snapshot->count_by_state();
        for (const char* s : {"active", "idle", "idle in transaction"})
            by_state.try_emplace(s, 0);
        for (const auto& [state, n] : by_state)
            w.sample("poolguard_db_connections", lbl({{"database", d.name}, {"state", state}}), n);
    }
    struct DbGauge {
        const char* name;
        const char* help;
        double (*get)(const dbview::Snapshot&);
    };
    static const DbGauge kGauges[] = {
        {"poolguard_db_max_connections", "The database's max_connections",
         [](const dbview::Snapshot& s) { return double(s.max_connections); }},
        {"poolguard_db_reserved_connections", "Slots reserved for superusers",
         [](const dbview::Snapshot& s) { return double(s.reserved_connections); }},
        {"poolguard_db_usable_connections", "Usable slots: max_connections minus the reserved ones",
         [](const dbview::Snapshot& s) { return double(s.usable()); }},
        {"poolguard_db_used_connections", "Client connections counted against the usable slots",
         [](const dbview::Snapshot& s) { return double(s.used()); }},
        {"poolguard_db_utilization_ratio", "Used / usable slots (above 1 when superusers use reserved slots)",
         [](const dbview::Snapshot& s) { return s.utilization(); }},
        {"poolguard_db_longest_query_seconds", "Age of the longest running active query",
         [](const dbview::Snapshot& s) {
             double m = 0;
             for (const auto& x : s.sessions)
                 if (!x.system && x.state == dbview::SessionState::active && x.query_age_s && !x.own)
                     m = std::max(m, *x.query_age_s);
             return m;
         }},
        {"poolguard_db_oldest_idle_in_transaction_seconds", "Longest a session has been idle in transaction",
         [](const dbview::Snapshot& s) {
             double m = 0;
             for (const auto& x : s.sessions)
                 if (x.state == dbview::SessionState::idle_in_transaction && x.state_age_s)
                     m = std::max(m, *x.state_age_s);
             return m;
         }},
    };
    for (const auto& g : kGauges) {
        w.family(g.name, "gauge", g.help);
        for (const auto& d : st.databases)
            if (d.snapshot) w.sample(g.name, lbl({{"database", d.name}}), g.get(*d.snapshot));
    }

    // Detectors: the worst severity per detector and database (0 ok, 1 warning, 2 critical).
    std::map<std::pair<std::string, std::string>, int> worst;
    std::map<std::string, int> suspects;
    for (const auto& f : st.findings) {
        auto& v = worst[{f.kind, f.database}];
        v = std::max(v, static_cast<int>(f.severity));
        if (f.kind == "client_leak" && f.severity != detect::Severity::ok) ++suspects[f.database];
    }
    w.family("poolguard_detector_state", "gauge", "Detector state: 0 ok, 1 warning, 2 critical");
    for (const auto& [key, v] : worst)
        w.sample("poolguard_detector_state", lbl({{"detector", key.first}, {"database", key.second}}), v);
    w.family("poolguard_leak_suspects", "gauge",
             "Clients holding a server idle in transaction longer than leak_detection_threshold");
    std::set<std::string> dbs;
    for (const auto& p : st.proxy.pools)
        dbs.insert(p.database);
    for (const auto& [db, n] : suspects)
        dbs.insert(db);
    for (const auto& db : dbs)
        w.sample("poolguard_leak_suspects", lbl({{"database", db}}),
                 suspects.contains(db) ? suspects.at(db) : 0);
    w.family("poolguard_exhaustion_eta_seconds", "gauge",
             "Forecast time until the usable slots are exhausted");
    for (const auto& f : st.findings) {
        if (f.kind != "exhaustion_forecast") continue;
        for (const auto& [k, v] : f.evidence)
            if (k == "eta_minutes")
                w.sample("poolguard_exhaustion_eta_seconds", lbl({{"database", f.database}}), v * 60);
    }
}

}  // namespace

std::string render_metrics(const ControlStatus& status) {
    Writer w;
    w.family("pgbouncer_up", "gauge", "The pooler is up (pgbouncer_exporter compatible)");
    w.sample("pgbouncer_up", "", 1);
    pool_metrics(w, status.proxy);
    own_metrics(w, status);
    class_metrics(w, status.proxy);
    adaptive_metrics(w, status.proxy);
    return w.take() + respond::render_guard_metrics();
}

}  // namespace poolguard::control
