// Owns the shared test fixture (one TempPostgres per suite, roles, pooler config) and concurrency helpers.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "pg_client.h"
#include "poolguard_process.h"
#include "temp_postgres.h"

namespace itest {

// Login roles that every shared server has (SCRAM-stored passwords; pg_hba is trust for TCP by default).
inline const std::string kApp = "app";
inline const std::string kAppPass = "apppass";
inline const std::string kApp2 = "app2";
inline const std::string kApp2Pass = "app2pass";

// Base fixture: SetUpTestSuite starts one TempPostgres for the suite (options from server_options()) and
// creates the roles; SetUp waits until no backend of a previous test's pooler is left.
class PoolerTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { start_server(TempPostgresOptions{}); }
    static void TearDownTestSuite() { server_.reset(); }
    void SetUp() override;

    static void start_server(TempPostgresOptions options);
    static TempPostgres& pg() { return *server_; }

    // One database "db" -> the suite's server (dbname=postgres), the given mode and default_pool_size,
    // userlist with app/app2, auth_type=trust, generous limits and timeouts.
    static PoolerConfig base_config(const std::string& pool_mode = "transaction", int pool_size = 2);

    static std::unique_ptr<TempPostgres> server_;
};

// Samples count_backends(where) every ~20 ms on a background thread. max() is the highest sample;
// sustained_max() the highest count seen in two consecutive samples, which ignores a backend that lingers
// for a few ms in pg_stat_activity after the pooler closed its connection (use it for "at most N" checks).
class BackendSampler {
  public:
    BackendSampler(TempPostgres& pg, std::string where);
    ~BackendSampler() { stop(); }
    long long stop();  // returns max()
    long long max() const { return max_.load(); }
    long long sustained_max() const { return sustained_max_.load(); }

  private:
    TempPostgres& pg_;
    std::string where_;
    std::atomic<bool> stop_{false};
    std::atomic<long long> max_{0};
    std::atomic<long long> sustained_max_{0};
    std::thread thread_;
};

// EXPECT_TRUE(Ok(c.exec("..."))) prints the result (status, SQLSTATE, message) when it failed.
inline ::testing::AssertionResult Ok(const QueryResult& r) {
    if (r.ok()) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << r.describe();
}

// Polls `predicate` every 20 ms until it holds; false on timeout.
bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);

// GET http://127.0.0.1:<port><path> (poolguard's http_listen): the body, or "" unless the answer is 200.
std::string http_get(int port, const std::string& path);

// Runs `sql` once on each DSN at the same time (each its own connection and thread); results in DSN order.
std::vector<QueryResult> run_concurrently(const std::vector<std::string>& dsns, const std::string& sql);

}  // namespace itest
