// Owns the data the control plane's threads share: what the io thread publishes about the proxy every
// second (ProxySnapshot), the database view per sampled database, and the detectors' current findings
// (ControlStatus, what /metrics and /api/v1/status render).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "admin/admin_backend.h"
#include "common/dataplane_counters.h"
#include "dbview/snapshot.h"
#include "detect/finding.h"
#include "detect/sample.h"
#include "respond/responder.h"

namespace poolguard::control {

// A plain copy of DataPlaneCounters.
struct CounterValues {
    uint64_t refused_max_client_conn = 0, refused_query_wait_timeout = 0, refused_server_error = 0;
    uint64_t client_login_failures = 0, server_too_many_clients = 0, server_login_failures = 0;
    uint64_t refused_breaker = 0, breaker_opens = 0, breaker_closes = 0;
    std::array<uint64_t, DataPlaneCounters::kWaitBuckets.size() + 1> wait_bucket{};
    uint64_t wait_count = 0, wait_sum_us = 0;
    int64_t clients_parked = 0;
    std::array<uint64_t, kRejectionCount> client_rejections{};  // by Rejection (issue 15)
    static CounterValues read(const DataPlaneCounters& c);
};

// What the io thread copies out of the proxy every second.
struct ProxySnapshot {
    bool valid = false;
    double t = 0;  // seconds on the control plane's steady clock
    int clients = 0;
    std::vector<admin::PoolRow> pools;
    std::vector<admin::StatsRow> stats;        // totals since start, per database
    std::vector<detect::ClientHold> holds;     // every client linked to a server
    std::vector<admin::ClassRow> classes;      // priority classes per pool (issue 6)
    std::vector<admin::BreakerRow> breakers;   // circuit breaker per database (issue 6)
    std::vector<admin::AdaptiveRow> adaptive;  // adaptive pool size per pool (issue 6 part 4)
    CounterValues counters;
    std::vector<respond::PooledServer> servers;  // poolguard's own server connections (responders)
};

// The last look at one database's connections.
struct DatabaseView {
    std::string name;    // the [databases] entry it was sampled for
    std::string target;  // host:port/dbname, for people
    std::optional<dbview::Snapshot> snapshot;
    std::string error;  // the last sampling error, "" when the last sample worked
    double sampled_t = 0;
};

struct ControlStatus {
    ProxySnapshot proxy;
    std::vector<DatabaseView> databases;
    std::vector<detect::Finding> findings;  // the current finding of every detector and subject
};

}  // namespace poolguard::control
