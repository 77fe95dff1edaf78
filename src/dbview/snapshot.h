// Owns the engine-neutral picture of "who holds the database's connections right now": one Snapshot per
// sample of pg_stat_activity (PostgreSQL) or PROCESSLIST (MySQL/MariaDB). Produced by the samplers in this
// directory; read by `poolguard diagnose/recover/watch`, the control plane's detectors, responders and
// metrics.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace poolguard::dbview {

enum class Engine { postgres, mysql };

// Connection state normalised across engines. PostgreSQL: pg_stat_activity.state; MySQL: Command
// ("Sleep" = idle, "Query"/"Execute" = active, with trx_state from information_schema.innodb_trx giving
// idle_in_transaction for sleeping sessions that hold a transaction open).
enum class SessionState {
    active,
    idle,
    idle_in_transaction,
    idle_in_transaction_aborted,
    fastpath,
    disabled,
    other
};

// One server backend / MySQL thread. Ages are in seconds at sample time; absent when the engine has no value.
struct Session {
    int64_t id = 0;  // PostgreSQL pid / MySQL thread id: what cancel/terminate/KILL take
    std::string user;
    std::string database;
    std::string application;  // application_name (MySQL: program_name attribute when known, else "")
    std::string client_addr;  // "" for Unix socket / local
    SessionState state = SessionState::other;
    std::string state_text;               // the engine's own word for the state, for display
    std::string query;                    // current or last statement, truncated to 1 KiB
    std::optional<double> backend_age_s;  // since connect
    std::optional<double> xact_age_s;     // since the open transaction began
    std::optional<double> query_age_s;    // since the current/last query began
    std::optional<double> state_age_s;    // since the last state change (idle for how long)
    bool superuser = false;               // PostgreSQL rolsuper / MySQL SUPER or root
    bool replication = false;             // walsender / MySQL "Binlog Dump"
    bool system = false;                  // background workers, MySQL system/event threads: never touched
    bool own = false;                     // this sampler's own connection
    std::string backend_type;  // PG backend_type ("client backend", "walsender", ...); MySQL: Command
};

struct Snapshot {
    Engine engine = Engine::postgres;
    std::string server_version;
    std::chrono::system_clock::time_point taken_at{};
    int max_connections = 0;
    int reserved_connections = 0;   // superuser_reserved_connections (+ reserved_connections on PG 16)
    std::vector<Session> sessions;  // client backends and system sessions alike; see Session flags

    // Usable slots for ordinary clients: max_connections minus reserved.
    int usable() const { return max_connections - reserved_connections; }
    // Client connections that count against the usable slots (not system, not replication).
    int used() const;
    // used() / usable(); may exceed 1.0 when superusers dip into the reserved slots ("95/90").
    double utilization() const;
    // Client sessions per normalised state (keys: "active", "idle", "idle in transaction", ...).
    std::map<std::string, int> count_by_state() const;
};

std::string to_string(SessionState s);
std::string to_string(Engine e);

}  // namespace poolguard::dbview
