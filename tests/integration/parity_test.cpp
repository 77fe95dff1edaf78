// Owns the integration tests of PgBouncer-parity features (also run against PgBouncer 1.25.2 with
// POOLGUARD_IT_TARGET=pgbouncer): prepared statements in transaction mode, the admin
// console, PAUSE/RESUME, reserve pool and the client-side timeouts.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "fixtures.h"

namespace itest {
namespace {

class Parity : public PoolerTest {};

TEST_F(Parity, NamedPreparedStatementsSurviveServerChangesInTransactionMode) {
    PoolerConfig cfg = base_config("transaction", 3);
    cfg.set("max_prepared_statements", 2);  // small LRU: eviction and re-preparation happen too
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    constexpr int kClients = 12;
    std::atomic<int> failures{0};
    std::string first_failure;
    std::mutex failure_mutex;
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c) {
        threads.emplace_back([&, c] {
            PgConn conn(pooler.dsn(kApp));
            auto record = [&](const QueryResult& r) {
                if (r.ok()) return;
                if (failures.fetch_add(1) == 0) {
                    std::lock_guard lock(failure_mutex);
                    first_failure = r.describe();
                }
            };
            if (!conn.ok()) {
                failures.fetch_add(1);
                return;
            }
            record(conn.prepare("double", "select $1::int * 2", 1));
            record(conn.prepare("plus", "select $1::int + " + std::to_string(c), 1));
            record(conn.prepare("third", "select $1::text || 'x'", 1));
            for (int i = 0; i < 30; ++i) {
                QueryResult d = conn.exec_prepared("double", {std::to_string(i)});
                record(d);
                if (d.ok() && d.value() != std::to_string(2 * i)) failures.fetch_add(1);
                QueryResult p = conn.exec_prepared("plus", {std::to_string(i)});
                record(p);
                if (p.ok() && p.value() != std::to_string(i + c)) failures.fetch_add(1);
                record(conn.exec_prepared("third", {"v"}));
            }
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(failures.load(), 0) << first_failure;
}

TEST_F(Parity, PreparedStatementsKeepWorkingAfterServersAreClosed) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn conn(pooler.dsn(kApp));
    ASSERT_TRUE(conn.ok()) << conn.connect_error();
    ASSERT_TRUE(Ok(conn.prepare("q", "select $1::int + 1", 1)));
    ASSERT_TRUE(Ok(conn.exec_prepared("q", {"1"})));
    // Every server backend of the pool goes away; the statement must be prepared again transparently.
    ASSERT_TRUE(
        Ok(pg().exec("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'app'")));
    ASSERT_TRUE(eventually([&] { return pg().count_backends("usename = 'app'") == 0; }, 5s));
    std::this_thread::sleep_for(200ms);
    QueryResult r = conn.exec_prepared("q", {"41"});
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), "42");
}

TEST_F(Parity, AdminConsoleShowsPgBouncerColumnsAndRefusesOtherUsers) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn admin(pooler.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    QueryResult pools = admin.exec("SHOW POOLS");
    ASSERT_TRUE(pools.ok()) << pools.describe();
    ASSERT_GE(pools.columns.size(), 16u);
    EXPECT_EQ(pools.columns[0], "database");
    EXPECT_EQ(pools.columns[15], "pool_mode");
    for (const char* cmd :
         {"SHOW CLIENTS", "SHOW SERVERS", "SHOW STATS", "SHOW STATS_TOTALS", "SHOW STATS_AVERAGES",
          "SHOW DATABASES", "SHOW USERS", "SHOW CONFIG", "SHOW LISTS", "SHOW VERSION", "SHOW STATE"}) {
        EXPECT_TRUE(Ok(admin.exec(cmd))) << cmd;
    }
    PgConn other(pooler.dsn(kApp2, kApp2Pass, "pgbouncer"));
    EXPECT_FALSE(other.ok());
    EXPECT_NE(other.connect_error().find("not allowed"), std::string::npos) << other.connect_error();
}

TEST_F(Parity, PauseHoldsQueriesAndResumeReleasesThem) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn admin(pooler.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    PgConn client(pooler.dsn(kApp));
    ASSERT_TRUE(client.ok()) << client.connect_error();
    ASSERT_TRUE(Ok(admin.exec("PAUSE db")));
    ASSERT_TRUE(client.send("select 7"));
    std::this_thread::sleep_for(700ms);
    EXPECT_FALSE(client.result_ready()) << "a query ran while the database was paused";
    ASSERT_TRUE(Ok(admin.exec("RESUME db")));
    QueryResult r = client.wait(10s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), "7");
}

TEST_F(Parity, ReservePoolOpensExactlyTheExtraConnectionsAfterTheTimeout) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("reserve_pool_size", 2);
    cfg.set("reserve_pool_timeout", "0.5");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    BackendSampler sampler(pg(), "usename = 'app' and query like 'select pg_sleep(2)%' and state = 'active'");
    std::vector<QueryResult> results =
        run_concurrently(std::vector<std::string>(6, pooler.dsn(kApp)), "select pg_sleep(2)");
    sampler.stop();
    for (const auto& r : results)
        EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(sampler.sustained_max(), 4) << "default_pool_size 2 + reserve_pool_size 2";
}

TEST_F(Parity, IdleTransactionTimeoutCutsClientAndRollsBackServer) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("idle_transaction_timeout", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));
    ASSERT_TRUE(Ok(c.exec("select 1")));
    EXPECT_TRUE(eventually(
        [&] { return pg().count_backends("usename = 'app' and state like 'idle in transaction%'") == 0; },
        5s));
    QueryResult r = c.exec("select 2", 5s);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.error.find("idle transaction timeout"), std::string::npos) << r.describe();
}

TEST_F(Parity, QueryTimeoutEndsALongQuery) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP()
            << "PgBouncer 1.25.2 fails this (checked): it answers 08P01 \"query timeout\" and closes the "
               "server without a cancel, so the backend's pg_sleep(10) runs on for nobody; poolguard "
               "cancels the query first, freeing the backend at once";
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("query_timeout", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult r = c.exec("select pg_sleep(10)", 8s);
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_NE(r.error.find("query_timeout"), std::string::npos) << r.describe();
    EXPECT_LT(r.elapsed_ms, 4000) << r.describe();
    EXPECT_TRUE(eventually(
        [&] { return pg().count_backends("query like 'select pg_sleep(10)%' and state = 'active'") == 0; },
        5s));
}

}  // namespace
}  // namespace itest
