// Owns the counters the data plane keeps for the control plane (issue 5): refusals by reason, login
// failures, 53300 refusals from servers and the client wait-time histogram. Written by the io thread,
// read by the control plane's threads: every field is a relaxed atomic, one per process like the logger.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

#include "common/rejections.h"

namespace poolguard {

struct DataPlaneCounters {
    // Upper bounds (seconds) of the wait-time histogram buckets; the last bucket is +Inf.
    static constexpr std::array<double, 10> kWaitBuckets{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30};

    std::atomic<uint64_t> refused_max_client_conn{0};     // client refused at login: max_client_conn
    std::atomic<uint64_t> refused_query_wait_timeout{0};  // client waited query_wait_timeout for a server
    std::atomic<uint64_t> refused_server_error{0};        // client failed fast with the server's login error
    std::atomic<uint64_t> client_login_failures{0};       // wrong password, unknown user, ...
    std::atomic<uint64_t> server_too_many_clients{0};     // a server login refused with SQLSTATE 53300
    std::atomic<uint64_t> server_login_failures{0};       // every failed server login (53300 included)
    std::atomic<uint64_t> refused_breaker{0};             // refused at once: the database's breaker is open
    std::atomic<uint64_t> breaker_opens{0};               // circuit breaker transitions to open
    std::atomic<uint64_t> breaker_closes{0};              // ... and back to closed
    std::atomic<int64_t> clients_parked{0};               // gauge: idle clients with no coroutine (parked)
    // Connections refused before login, by reason (issue 15; session/refusal_log counts them).
    std::array<std::atomic<uint64_t>, kRejectionCount> client_rejections{};

    std::array<std::atomic<uint64_t>, kWaitBuckets.size() + 1> wait_bucket{};  // non-cumulative counts
    std::atomic<uint64_t> wait_count{0};
    std::atomic<uint64_t> wait_sum_us{0};

    void observe_wait(uint64_t micros) {
        const double s = static_cast<double>(micros) / 1e6;
        size_t i = 0;
        while (i < kWaitBuckets.size() && s > kWaitBuckets[i])
            ++i;
        wait_bucket[i].fetch_add(1, std::memory_order_relaxed);
        wait_count.fetch_add(1, std::memory_order_relaxed);
        wait_sum_us.fetch_add(micros, std::memory_order_relaxed);
    }
};

// The process's counters.
inline DataPlaneCounters& dataplane_counters() {
    static DataPlaneCounters counters;
    return counters;
}

}  // namespace poolguard
