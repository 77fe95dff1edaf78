// Owns FaultLoad: the fault tests' client load (issue 15) — libpq clients committing unique ids through a
// pooler and recording every outcome, so a test can count lost acknowledged commits, hung and failed requests
// and the recovery time around a fault.
#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "pg_client.h"
#include "temp_postgres.h"

namespace itest {

struct FaultLoadOptions {
    std::string dsn;                             // the pooler
    std::string table = "fault_acks";            // (id bigint primary key), created by create_table()
    int clients = 8;                             // one thread and one connection each
    std::chrono::milliseconds op_timeout = 15s;  // a statement without an answer by then counts as hung
    std::chrono::milliseconds think = 2ms;       // pause between transactions (keeps the CPU for others)
};

// One transaction: BEGIN; INSERT id; COMMIT — three round trips, so that a transaction holds its server
// (transaction pooling) for a while and faults hit transactions in flight. A failure at any step, or a failed
// (re)connect to the pooler, is one failed request.
struct TxnOutcome {
    Clock::time_point start;
    Clock::time_point end;
    long long id = 0;
    bool committed = false;  // the client saw COMMIT succeed: the id must be in the table
    bool hung = false;       // some step got no answer within op_timeout
    std::string error;       // "step: SQLSTATE message" of a failure
};

class FaultLoad {
  public:
    explicit FaultLoad(FaultLoadOptions options) : options_(std::move(options)) {}
    ~FaultLoad() { stop(); }
    FaultLoad(const FaultLoad&) = delete;
    FaultLoad& operator=(const FaultLoad&) = delete;

    // (Re)creates the table on `pg` and grants it to PUBLIC.
    static bool create_table(TempPostgres& pg, const std::string& table = "fault_acks");

    void start();
    // Stops the clients and joins them; each finishes within op_timeout (3 steps) of the call.
    void stop();
    // Whether stop() returned within `bound` of being called (false = a client hung past every timeout).
    long long stop_ms() const { return stop_ms_; }

    // ---- after stop() ----
    std::vector<TxnOutcome> outcomes() const;
    long long committed() const;
    long long failed() const;
    long long hung() const;
    // Failed requests that started at or after `t`.
    long long failed_started_after(Clock::time_point t) const;
    // Milliseconds from `t` to the end of the first commit that ended after `t`; nullopt if none.
    std::optional<long long> first_commit_after(Clock::time_point t) const;
    // The longest request (connect + BEGIN + INSERT + COMMIT, failed or not), in milliseconds.
    long long max_request_ms() const;
    // Acknowledged ids missing from the table (queried on `pg` directly).
    std::vector<long long> lost_commits(TempPostgres& pg) const;
    // A few failures for assertion messages.
    std::string describe_failures(size_t max = 8) const;
    // "committed=N failed=N hung=N" plus the failures.
    std::string summary() const;

  private:
    void run_client(int index);

    FaultLoadOptions options_;
    std::atomic<bool> stop_{false};
    std::vector<std::thread> threads_;
    mutable std::mutex mutex_;
    std::vector<TxnOutcome> outcomes_;
    long long stop_ms_ = 0;
};

}  // namespace itest
