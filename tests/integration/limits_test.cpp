// Owns the integration tests of limits and waits: max_client_conn, query_wait_timeout, FIFO, pool caps.
#include <gtest/gtest.h>

#include <memory>
#include <thread>
#include <vector>

#include "fixtures.h"

namespace itest {
namespace {

class Limits : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        PoolerTest::SetUpTestSuite();
        if (!server_->ok()) return;
        server_->exec("CREATE DATABASE otherdb");
        server_->exec(
            "CREATE TABLE fifo_log(seq serial primary key, n int); GRANT ALL ON fifo_log TO PUBLIC; "
            "GRANT ALL ON SEQUENCE fifo_log_seq_seq TO PUBLIC");
    }
};

TEST_F(Limits, MaxClientConnRejectsExtraClientsWith53300) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("max_client_conn", 3);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    std::vector<std::unique_ptr<PgConn>> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(std::make_unique<PgConn>(pooler.dsn(kApp)));
        ASSERT_TRUE(clients.back()->ok()) << "client " << i << ": " << clients.back()->connect_error();
    }
    LoginOutcome extra = raw_login(pooler.host(), pooler.port(), kApp, "db", "", 10s);
    EXPECT_FALSE(extra.ready) << extra.describe();
    if (!PoolguardProcess::testing_pgbouncer()) {
        EXPECT_EQ(extra.sqlstate, "53300") << extra.describe();  // pgbouncer 1.18 sends 08P01
    }
    EXPECT_NE(extra.message.find("no more connections allowed (max_client_conn)"), std::string::npos)
        << extra.describe();
    PgConn refused(pooler.dsn(kApp));
    EXPECT_FALSE(refused.ok());
    EXPECT_NE(refused.connect_error().find("max_client_conn"), std::string::npos) << refused.connect_error();

    // Existing clients are unaffected, and a slot freed is a slot usable again.
    EXPECT_TRUE(Ok(clients[0]->exec("select 1")));
    clients.pop_back();
    EXPECT_TRUE(eventually([&] { return PgConn(pooler.dsn(kApp)).ok(); }, 5s));
}

TEST_F(Limits, QueryWaitTimeoutEndsWaitWith53300) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("query_wait_timeout", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn holder(pooler.dsn(kApp)), waiter(pooler.dsn(kApp));
    ASSERT_TRUE(holder.ok()) << holder.connect_error();
    ASSERT_TRUE(waiter.ok()) << waiter.connect_error();
    ASSERT_TRUE(Ok(holder.exec("BEGIN")));
    ASSERT_TRUE(Ok(holder.exec("select 1")));
    QueryResult r = waiter.exec("select 2", 20s);
    EXPECT_FALSE(r.ok()) << r.describe();
    EXPECT_FALSE(r.timed_out) << r.describe();
    if (!PoolguardProcess::testing_pgbouncer()) {
        EXPECT_EQ(r.sqlstate, "53300") << r.describe();  // pgbouncer 1.18 sends 08P01
    }
    EXPECT_NE(r.error.find("query_wait_timeout"), std::string::npos) << r.describe();
    EXPECT_GE(r.elapsed_ms, 500) << r.describe();
    EXPECT_LE(r.elapsed_ms, 6000) << r.describe();
    // The transaction holding the server is not disturbed.
    EXPECT_TRUE(Ok(holder.exec("COMMIT")));
}

// Waiters queued at different times each time out after their own query_wait_timeout (one pool-wide timer
// is re-armed for the next deadline after the first expires).
TEST_F(Limits, QueryWaitTimeoutAppliesToEachWaiterFromItsOwnStart) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("query_wait_timeout", 2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn holder(pooler.dsn(kApp)), first(pooler.dsn(kApp)), second(pooler.dsn(kApp));
    ASSERT_TRUE(holder.ok() && first.ok() && second.ok());
    ASSERT_TRUE(Ok(holder.exec("BEGIN")));
    ASSERT_TRUE(Ok(holder.exec("select 1")));
    QueryResult r1, r2;
    std::thread t1([&] { r1 = first.exec("select 2", 20s); });
    std::this_thread::sleep_for(1000ms);
    std::thread t2([&] { r2 = second.exec("select 3", 20s); });
    t1.join();
    t2.join();
    for (const QueryResult* r : {&r1, &r2}) {
        EXPECT_FALSE(r->ok()) << r->describe();
        EXPECT_FALSE(r->timed_out) << r->describe();
        EXPECT_NE(r->error.find("query_wait_timeout"), std::string::npos) << r->describe();
        EXPECT_GE(r->elapsed_ms, 1500) << r->describe();  // never cut short by the other waiter's deadline
        EXPECT_LE(r->elapsed_ms, 5000) << r->describe();
    }
    EXPECT_TRUE(Ok(holder.exec("COMMIT")));
}

TEST_F(Limits, WaitingClientsAreServedInArrivalOrder) {
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE fifo_log")));
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn holder(pooler.dsn(kApp));
    ASSERT_TRUE(holder.ok()) << holder.connect_error();
    std::vector<std::unique_ptr<PgConn>> waiters;
    for (int i = 0; i < 5; ++i) {
        waiters.push_back(std::make_unique<PgConn>(pooler.dsn(kApp)));
        ASSERT_TRUE(waiters.back()->ok()) << waiters.back()->connect_error();
    }
    ASSERT_TRUE(Ok(holder.exec("BEGIN")));
    ASSERT_TRUE(Ok(holder.exec("select 1")));
    for (int i = 0; i < 5; ++i) {
        ASSERT_TRUE(waiters[i]->send("insert into fifo_log(n) values (" + std::to_string(i + 1) + ")"));
        std::this_thread::sleep_for(150ms);  // make the arrival order unambiguous
    }
    ASSERT_TRUE(Ok(holder.exec("COMMIT")));
    for (auto& w : waiters) {
        QueryResult r = w->wait(20s);
        EXPECT_TRUE(r.ok()) << r.describe();
    }
    EXPECT_EQ(pg().query_scalar("select string_agg(n::text, ',' order by seq) from fifo_log"), "1,2,3,4,5");
}

TEST_F(Limits, DefaultPoolSizeCapsServerConnectionsPerPool) {
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    BackendSampler sampler(pg(), "usename = 'app'");
    std::vector<QueryResult> results =
        run_concurrently(std::vector<std::string>(6, pooler.dsn(kApp)), "select pg_sleep(0.4)");
    long long max = sampler.stop();
    for (const auto& r : results)
        EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(max, 2) << "6 concurrent clients should use exactly default_pool_size=2 server connections";
}

TEST_F(Limits, MaxDbConnectionsCapsServerConnectionsAcrossUsers) {
    PoolerConfig cfg = base_config("transaction", 5);
    cfg.set("max_db_connections", 2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    BackendSampler sampler(pg(), "usename in ('app', 'app2') and datname = 'postgres'");
    std::vector<std::string> dsns;
    for (int i = 0; i < 3; ++i) {
        dsns.push_back(pooler.dsn(kApp));
        dsns.push_back(pooler.dsn(kApp2));
    }
    std::vector<QueryResult> results = run_concurrently(dsns, "select pg_sleep(0.4)");
    sampler.stop();
    long long max = sampler.sustained_max();
    for (const auto& r : results)
        EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_GE(max, 1);
    EXPECT_LE(max, 2) << "max_db_connections=2 must cap the server connections of all users of the database";
}

TEST_F(Limits, MaxUserConnectionsCapsServerConnectionsAcrossDatabases) {
    PoolerConfig cfg = base_config("transaction", 5);
    cfg.database("db2", pg().pooler_target("", "otherdb"));
    cfg.user(kApp, "max_user_connections=2");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    BackendSampler sampler(pg(), "usename = 'app'");
    std::vector<std::string> dsns;
    for (int i = 0; i < 3; ++i) {
        dsns.push_back(pooler.dsn(kApp, "", "db"));
        dsns.push_back(pooler.dsn(kApp, "", "db2"));
    }
    std::vector<QueryResult> results = run_concurrently(dsns, "select pg_sleep(0.4)");
    sampler.stop();
    long long max = sampler.sustained_max();
    for (const auto& r : results)
        EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_GE(max, 1);
    EXPECT_LE(max, 2) << "max_user_connections=2 must cap the user's server connections over all databases";
}

TEST_F(Limits, DatabasePoolSizeOverridesDefaultPoolSize) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.databases.clear();
    cfg.database("db", pg().pooler_target("pool_size=3"));
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    BackendSampler sampler(pg(), "usename = 'app'");
    std::vector<QueryResult> results =
        run_concurrently(std::vector<std::string>(6, pooler.dsn(kApp)), "select pg_sleep(0.4)");
    long long max = sampler.stop();
    for (const auto& r : results)
        EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(max, 3);
}

}  // namespace
}  // namespace itest
