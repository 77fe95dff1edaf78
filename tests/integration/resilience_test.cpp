// Owns the failure-handling integration tests: vanished clients, terminated server backends.
#include <gtest/gtest.h>

#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

class Resilience : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        PoolerTest::SetUpTestSuite();
        if (!server_->ok()) return;
        server_->exec("CREATE TABLE abandoned(x int); GRANT ALL ON abandoned TO PUBLIC");
    }
};

const std::string kIdleInTransaction = "usename = 'app' and state like 'idle in transaction%'";

TEST_F(Resilience, ClientDisconnectMidTransactionLeavesNoIdleInTransactionBackend) {
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE abandoned")));
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    {
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        ASSERT_TRUE(Ok(c.exec("BEGIN")));
        ASSERT_TRUE(Ok(c.exec("insert into abandoned values (1)")));
        ASSERT_TRUE(
            pg().wait_until("select count(*) = 1 from pg_stat_activity where " + kIdleInTransaction, 3s));
        c.close();  // Terminate without COMMIT
    }
    EXPECT_TRUE(pg().wait_no_backends(kIdleInTransaction, 5s))
        << pg().exec("select pid, state, query from pg_stat_activity where usename = 'app'").describe();
    EXPECT_EQ(pg().query_scalar("select count(*) from abandoned"), "0");
    PgConn next(pooler.dsn(kApp));
    ASSERT_TRUE(next.ok()) << next.connect_error();
    QueryResult r = next.exec("select 1", 10s);
    EXPECT_TRUE(r.ok()) << "the only pool slot must be usable again: " << r.describe();
}

TEST_F(Resilience, ClientSocketResetMidTransactionLeavesNoIdleInTransactionBackend) {
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE abandoned")));
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    {
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        ASSERT_TRUE(Ok(c.exec("BEGIN")));
        ASSERT_TRUE(Ok(c.exec("insert into abandoned values (1)")));
        ASSERT_TRUE(
            pg().wait_until("select count(*) = 1 from pg_stat_activity where " + kIdleInTransaction, 3s));
        c.abort_socket();  // like a killed client process: no Terminate message
    }
    EXPECT_TRUE(pg().wait_no_backends(kIdleInTransaction, 5s))
        << pg().exec("select pid, state, query from pg_stat_activity where usename = 'app'").describe();
    EXPECT_EQ(pg().query_scalar("select count(*) from abandoned"), "0");
    PgConn next(pooler.dsn(kApp));
    ASSERT_TRUE(next.ok()) << next.connect_error();
    QueryResult r = next.exec("select 1", 10s);
    EXPECT_TRUE(r.ok()) << "the only pool slot must be usable again: " << r.describe();
}

TEST_F(Resilience, ClientVanishingDuringQueryFreesItsServer) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    {
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        ASSERT_TRUE(c.send("select pg_sleep(1)"));
        ASSERT_TRUE(
            pg().wait_until("select count(*) = 1 from pg_stat_activity where usename = 'app' and "
                            "state = 'active'",
                            5s));
        c.abort_socket();
    }
    PgConn next(pooler.dsn(kApp));
    ASSERT_TRUE(next.ok()) << next.connect_error();
    QueryResult r = next.exec("select 'next'", 15s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), "next");
}

TEST_F(Resilience, ServerTerminatedMidTransactionFailsClientPromptly) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));
    QueryResult pid = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(pid.ok()) << pid.describe();
    ASSERT_EQ(pg().query_scalar("select pg_terminate_backend(" + pid.value() + ")"), "t");
    ASSERT_TRUE(pg().wait_until("select count(*) = 0 from pg_stat_activity where pid = " + pid.value(), 5s));
    QueryResult r = c.exec("select 1", 10s);
    EXPECT_FALSE(r.ok()) << r.describe();
    EXPECT_FALSE(r.timed_out) << "the client must get an error, not a hang: " << r.describe();
    EXPECT_LT(r.elapsed_ms, 3000) << r.describe();
    EXPECT_TRUE(r.sqlstate.rfind("08", 0) == 0 || r.sqlstate == "57P01")
        << "expected SQLSTATE class 08 or 57P01: " << r.describe();
    // The pool recovers for everyone else.
    PgConn next(pooler.dsn(kApp));
    ASSERT_TRUE(next.ok()) << next.connect_error();
    QueryResult n = next.exec("select 1", 15s);
    EXPECT_TRUE(n.ok()) << n.describe();
}

TEST_F(Resilience, ServerTerminatedWhileIdleInPoolIsReplacedTransparently) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult pid = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(pid.ok()) << pid.describe();
    ASSERT_EQ(pg().query_scalar("select pg_terminate_backend(" + pid.value() + ")"), "t");
    ASSERT_TRUE(pg().wait_until("select count(*) = 0 from pg_stat_activity where pid = " + pid.value(), 5s));
    std::this_thread::sleep_for(200ms);
    QueryResult r = c.exec("select pg_backend_pid()", 15s);
    ASSERT_TRUE(r.ok()) << "the next query must succeed on a fresh server connection: " << r.describe();
    EXPECT_NE(r.value(), pid.value());
    PgConn other(pooler.dsn(kApp));
    ASSERT_TRUE(other.ok()) << other.connect_error();
    EXPECT_TRUE(Ok(other.exec("select 1", 15s)));
}

TEST_F(Resilience, AllIdleServersTerminatedAreReplacedTransparently) {
    PoolguardProcess pooler(base_config("transaction", 3));
    ASSERT_TRUE(pooler.start());
    {
        // Warm the pool up to three server connections.
        std::vector<std::thread> threads;
        for (int i = 0; i < 3; ++i) {
            threads.emplace_back([&] {
                PgConn c(pooler.dsn(kApp));
                if (c.ok()) c.exec("select pg_sleep(0.3)");
            });
        }
        for (auto& t : threads)
            t.join();
    }
    ASSERT_EQ(pg().count_backends("usename = 'app'"), 3);
    ASSERT_EQ(
        pg().query_scalar("select count(pg_terminate_backend(pid)) from pg_stat_activity where usename = "
                          "'app'"),
        "3");
    ASSERT_TRUE(pg().wait_no_backends("usename = 'app'", 5s));
    std::this_thread::sleep_for(200ms);
    for (int i = 0; i < 5; ++i) {
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        QueryResult r = c.exec("select 1", 15s);
        EXPECT_TRUE(r.ok()) << "client " << i << ": " << r.describe();
    }
}

}  // namespace
}  // namespace itest
