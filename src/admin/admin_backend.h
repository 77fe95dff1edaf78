// Owns the admin console's view of the pooler: row snapshots for SHOW commands and the control verbs.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace poolguard::admin {

// One client or server connection, as SHOW CLIENTS / SHOW SERVERS / SHOW SOCKETS list them (PgBouncer 1.25).
struct ConnectionRow {
    std::string type;  // "C" client, "S" server
    std::string user;
    std::string database;
    std::string
        state;  // client: active | idle | waiting | login; server: active | idle | used | tested | new
    std::string addr;
    int port = 0;
    std::string local_addr;
    int local_port = 0;
    int64_t connect_time_unix = 0;  // seconds since epoch
    int64_t request_time_unix = 0;
    int64_t wait_us = 0;  // how long a waiting client has waited
    bool close_needed = false;
    uint64_t ptr = 0;         // poolguard's connection id
    uint64_t link = 0;        // id of the linked peer connection, 0 = none
    uint32_t remote_pid = 0;  // server backend pid (servers); 0 for clients
    std::string tls;  // e.g. "TLSv1.3/TLS_AES_256_GCM_SHA384", empty without TLS (filled by the TLS code)
    std::string application_name;
    std::string replication = "none";  // none | logical | physical
    int prepared_statements = 0;       // named prepared statements the client (or server) has
    int fd = -1;                       // the socket's descriptor (SHOW FDS), -1 = unknown
    uint64_t cancel_key = 0;           // SHOW FDS' cancel column (clients)
};

struct PoolRow {
    std::string database;
    std::string user;
    int cl_active = 0;
    int cl_waiting = 0;
    int sv_active = 0;
    int sv_idle = 0;
    int sv_used = 0;  // in clean-up
    int sv_tested = 0;
    int sv_login = 0;
    int64_t maxwait_us = 0;  // longest current wait
    std::string pool_mode;
    bool paused = false;
    std::string load_balance_hosts;  // empty = NULL (single host / not set)
};

// One priority class of one pool (SHOW CLASSES, issue 6).
struct ClassRow {
    std::string database;
    std::string user;
    std::string name;
    int priority = 0;
    int max_share = 100;  // percent
    int cap = 0;          // servers the class may hold; 0 = no cap
    int cl_active = 0;
    int cl_waiting = 0;
    int sv_active = 0;  // servers the class holds
    int64_t maxwait_us = 0;
};

// The circuit breaker of one database (SHOW BREAKERS, issue 6).
struct BreakerRow {
    std::string database;
    std::string state;   // closed | open | half-open | restarting (unreachable: clients wait, issue 15)
    std::string reason;  // why it last opened
    uint64_t opens = 0;
    int64_t since_us = 0;     // time in the current state
    std::string last_outage;  // the last outage that ended and how long it lasted (issue 15)
};

// The adaptive pool size of one pool (SHOW ADAPTIVE, issue 6 part 4).
struct AdaptiveRow {
    std::string database;
    std::string user;
    bool enabled = false;
    int limit = 0;              // server connections the pool may use now
    int min_limit = 0;          // max(1, min_pool_size)
    int budget = 0;             // the ceiling: pool_size, or what the database view leaves
    std::string budget_source;  // "pool_size" | "dbview"
    int pool_size = 0;
    int servers = 0;
    int in_use = 0;
    double latency_ms = 0;       // mean query time of the last window
    double long_latency_ms = 0;  // the long-term average it is compared with
    double gradient = 1;
    uint64_t windows = 0;
};

// Totals since start, per database (SHOW STATS / STATS_TOTALS / STATS_AVERAGES).
struct StatsRow {
    std::string database;
    uint64_t xact_count = 0;
    uint64_t query_count = 0;
    uint64_t bytes_received = 0;  // from clients
    uint64_t bytes_sent = 0;      // to clients
    uint64_t xact_time_us = 0;
    uint64_t query_time_us = 0;
    uint64_t wait_time_us = 0;
    uint64_t server_assignment_count = 0;  // times a server was assigned to a client
    uint64_t client_parse_count = 0;       // named Parse messages from clients
    uint64_t server_parse_count = 0;       // Parse messages of named statements sent to servers
    uint64_t bind_count = 0;               // Bind messages of named statements
};

struct DatabaseRow {
    std::string name;
    std::string host;
    int port = 0;
    std::string database;
    std::string force_user;
    int pool_size = 0;
    int min_pool_size = 0;
    int reserve_pool = 0;
    std::string pool_mode;  // empty = not set per database
    int max_connections = 0;
    int current_connections = 0;
    bool paused = false;
    bool disabled = false;
    // PgBouncer 1.25's columns (cfg helper fills them; SHOW DATABASES shows them in 1.25's order).
    int64_t server_lifetime_s = 0;   // effective (per database, else global), seconds
    std::string load_balance_hosts;  // "round-robin" | "disable" for a host list; empty (NULL) for one host
    int max_client_connections = 0;  // effective max_db_client_connections; 0 = unlimited
    int current_client_connections = 0;  // logged-in clients of this database
};

struct UserRow {
    std::string name;
    std::string pool_mode;  // empty = not set per user
    int max_user_connections = 0;
    int current_connections = 0;
    // PgBouncer 1.25's columns (cfg helper fills them).
    int pool_size = 0;                    // [users] pool_size; 0 = not set per user
    int reserve_pool_size = 0;            // [users] reserve_pool_size; 0 = not set per user
    int max_user_client_connections = 0;  // effective; 0 = unlimited
    int current_client_connections = 0;   // logged-in clients of this user
};

// One descriptor (SHOW FDS): listeners ("pooler"), clients and servers.
struct FdRow {
    int fd = -1;
    std::string task;  // pooler | client | server
    std::string user, database, addr;
    int port = 0;
    uint64_t cancel = 0;
    int link = 0;  // fd of the linked client/server, 0 = none
};

// One [peers] entry (SHOW PEERS).
struct PeerRow {
    int peer_id = 0;
    std::string host;
    int port = 0;
    int pool_size = 0;
};

// One peer that cancel requests were forwarded to (SHOW PEER_POOLS).
struct PeerPoolRow {
    int peer_id = 0;
    int cl_active_cancel_req = 0;   // sent to the peer, not yet taken
    int cl_waiting_cancel_req = 0;  // waiting for a connection to the peer
    int sv_active_cancel = 0;       // connections to the peer carrying a request
    int sv_login = 0;               // connections to the peer being opened
};

// One SHOW GUARD row: detectors, responders and their modes, and rows other components register
// (priority classes, circuit breaker).
struct GuardRow {
    std::string component, name, mode, state, detail;
};

// What the admin console can read and do. The session layer implements it; the console never touches pools
// or sessions directly.
class AdminBackend {
  public:
    virtual ~AdminBackend() = default;

    virtual std::vector<PoolRow> pools() = 0;
    virtual std::vector<ClassRow> classes() { return {}; }
    virtual std::vector<BreakerRow> breakers() { return {}; }
    virtual std::vector<AdaptiveRow> adaptive() { return {}; }
    virtual std::vector<ConnectionRow> clients() = 0;
    virtual std::vector<ConnectionRow> servers() = 0;
    virtual std::vector<StatsRow> stats_totals() = 0;
    // Per-second averages over the last stats_period, per database (same shape as totals).
    virtual std::vector<StatsRow> stats_averages() = 0;
    virtual std::vector<DatabaseRow> databases() = 0;
    virtual std::vector<UserRow> users() = 0;
    // Every configuration parameter: key, current value, default value, whether it can change at run time.
    struct ConfigRow {
        std::string key, value, default_value;
        bool changeable = true;
    };
    virtual std::vector<ConfigRow> config_rows() = 0;
    // SHOW LISTS: name -> count (databases, users, pools, free_clients, used_clients, login_clients, ...).
    virtual std::vector<std::pair<std::string, int64_t>> lists() = 0;
    virtual std::string version() = 0;  // e.g. "poolguard 0.1.0 (PgBouncer 1.18 compatible)"
    // SHOW STATE: active, paused, suspended.
    virtual std::vector<std::pair<std::string, std::string>> state() = 0;
    // SHOW GUARD (issue 6): empty when the pooler has no guard.
    virtual std::vector<GuardRow> guard_rows() { return {}; }
    // SHOW FDS: the listeners; clients and servers come from clients()/servers() (their fd field).
    virtual std::vector<FdRow> listener_fds() { return {}; }
    // SHOW PEERS ([peers]).
    virtual std::vector<PeerRow> peers() { return {}; }
    // SHOW PEER_POOLS: the peers cancel requests were forwarded to.
    virtual std::vector<PeerPoolRow> peer_pools() { return {}; }

    // Control verbs. `database` empty = all databases. Errors carry a SQLSTATE and a message for the admin.
    virtual Status set(const std::string& key, const std::string& value) = 0;
    virtual Status pause(const std::string& database) = 0;
    virtual Status resume(const std::string& database) = 0;
    virtual Status disable(const std::string& database) = 0;
    virtual Status enable(const std::string& database) = 0;
    virtual Status reload() = 0;
    virtual Status kill(const std::string& database) = 0;
    virtual Status kill_client(uint64_t client_id) = 0;
    virtual Status reconnect(const std::string& database) = 0;
    // WAIT_CLOSE: checks the database; the console then waits until close_needed_servers() is 0.
    virtual Status wait_close(const std::string& database) = 0;
    // Server connections (of `database`, or of all when empty) marked to close by RECONNECT or a reload
    // and still open.
    virtual int close_needed_servers(const std::string& database) {
        (void)database;
        return 0;
    }
    // SUSPEND: clients whose output poolguard is still writing (the socket's buffer is full), and dropping
    // them once suspend_timeout has passed.
    virtual int unflushed_clients() { return 0; }
    virtual void drop_unflushed_clients() {}
    // suspend_timeout; zero = wait as long as it takes.
    virtual std::chrono::milliseconds suspend_timeout() { return std::chrono::milliseconds(0); }
    virtual Status shutdown() = 0;
    // SHUTDOWN WAIT_FOR_SERVERS (false) / WAIT_FOR_CLIENTS (true): the shutdowns of SIGINT / SIGTERM.
    virtual Status shutdown_waiting(bool for_clients) {
        (void)for_clients;
        return fail("SHUTDOWN WAIT_FOR_* is not supported", "0A000");
    }
    // SUSPEND: new client work waits until RESUME (as PAUSE, but without waiting for servers).
    virtual Status suspend() { return fail("SUSPEND is not supported", "0A000"); }
};

}  // namespace poolguard::admin
