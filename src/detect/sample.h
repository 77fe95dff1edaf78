// Owns the inputs of the detectors: one DbSample per look at a database (its connection slots, from the
// database view) and one PoolerSample per look at the pooler (throughput, held servers, error counters).
// Times are seconds on any monotonic clock; detectors only compare them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "detect/finding.h"

namespace poolguard::detect {

// The database's connection slots at time t (from pg_stat_activity through the database view).
struct DbSample {
    double t = 0;
    int used = 0;        // client connections counted against the usable slots
    int usable = 0;      // max_connections - superuser_reserved_connections
    GroupCounts groups;  // the used connections by application, user and client address
};

// What poolguard itself sees for one database at time t. Counters are totals since start.
struct PoolerSample {
    double t = 0;
    int held = 0;                     // server connections linked to a client (sv_active)
    uint64_t xact_count = 0;          // transactions completed through poolguard
    uint64_t xact_time_us = 0;        // their summed duration
    GroupCounts idle_in_transaction;  // clients holding a server idle in transaction, grouped
};

// Process-wide error counters (totals since start) at time t.
struct ErrorSample {
    double t = 0;
    uint64_t server_too_many = 0;  // server logins refused with 53300
    uint64_t refusals = 0;         // poolguard's own capacity refusals (max_client_conn, query_wait_timeout)
    uint64_t login_failures = 0;   // client login failures
};

// One client of the proxy holding a server connection (for the per-client leak rule).
struct ClientHold {
    uint64_t client_id = 0;
    std::string database, user, application, address;
    int port = 0;
    uint32_t backend_pid = 0;
    bool idle_in_transaction = false;  // server's transaction status is not idle and it runs nothing
    double idle_s = 0;                 // since the server became ready (idle in transaction for how long)
    double xact_s = 0;                 // since the server was bound (the transaction's start)
    std::string last_statement;
};

}  // namespace poolguard::detect
