// Owns the integration tests of pool modes (transaction, statement, session) and per-(db, user) pools.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

class PoolModes : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        PoolerTest::SetUpTestSuite();
        if (server_->ok()) server_->exec("CREATE DATABASE otherdb");
    }
};

std::string server_pid(PgConn& c) {
    QueryResult r = c.exec("select pg_backend_pid()", 15s);
    return r.ok() ? r.value() : "<" + r.describe() + ">";
}

TEST_F(PoolModes, TransactionModeSharesOneServerBetweenAlternatingClients) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    std::set<std::string> pids;
    for (int i = 0; i < 5; ++i) {
        pids.insert(server_pid(a));
        pids.insert(server_pid(b));
    }
    EXPECT_EQ(pids.size(), 1u) << "both clients should run on the single pooled server connection";
    EXPECT_EQ(pg().count_backends("usename = 'app'"), 1);
}

TEST_F(PoolModes, TransactionModeHoldsServerUntilTransactionEnds) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    ASSERT_TRUE(Ok(a.exec("BEGIN")));
    ASSERT_TRUE(Ok(a.exec("select 1")));
    ASSERT_TRUE(b.send("select 2"));
    std::this_thread::sleep_for(500ms);
    EXPECT_FALSE(b.result_ready()) << "b ran while a's transaction held the only server";
    QueryResult commit = a.exec("COMMIT");
    ASSERT_TRUE(commit.ok()) << commit.describe();
    QueryResult rb = b.wait(10s);
    ASSERT_TRUE(rb.ok()) << rb.describe();
    EXPECT_EQ(rb.value(), "2");
}

TEST_F(PoolModes, TransactionModeReleasesServerAfterEachAutocommitStatement) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    // a stays connected but idle: b must never wait for it.
    ASSERT_TRUE(Ok(a.exec("select 1")));
    for (int i = 0; i < 20; ++i) {
        QueryResult r = b.exec("select 1", 5s);
        ASSERT_TRUE(r.ok()) << r.describe();
    }
}

TEST_F(PoolModes, StatementModeRejectsMultiStatementTransactions) {
    PoolguardProcess pooler(base_config("statement", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult begin = c.exec("BEGIN", 10s);
    QueryResult next = c.exec("select 1", 10s);
    EXPECT_FALSE(begin.ok() && next.ok()) << "BEGIN: " << begin.describe() << "\nselect: " << next.describe();
    EXPECT_FALSE(begin.timed_out || next.timed_out);
    // No server is left inside the refused transaction, and the pooler keeps serving.
    EXPECT_TRUE(
        pg().wait_until("select count(*) = 0 from pg_stat_activity where usename = 'app' and state like "
                        "'idle in transaction%'",
                        5s));
    PgConn d(pooler.dsn(kApp));
    ASSERT_TRUE(d.ok()) << d.connect_error();
    QueryResult r = d.exec("select 42", 10s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), "42");
}

TEST_F(PoolModes, StatementModeRunsAutocommitStatementsFromManyClients) {
    PoolguardProcess pooler(base_config("statement", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    for (int i = 0; i < 5; ++i) {
        QueryResult ra = a.exec("select 'a'", 10s);
        QueryResult rb = b.exec("select 'b'", 10s);
        ASSERT_TRUE(ra.ok()) << ra.describe();
        ASSERT_TRUE(rb.ok()) << rb.describe();
        EXPECT_EQ(ra.value(), "a");
        EXPECT_EQ(rb.value(), "b");
    }
}

TEST_F(PoolModes, SessionModeKeepsServerForWholeClientSession) {
    PoolguardProcess pooler(base_config("session", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    std::string pid = server_pid(a);
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(server_pid(a), pid);

    // b (connect and query in a thread: a pooler may hold b at login or at its first query) must wait for a.
    std::atomic<bool> b_done{false};
    std::string b_pid;
    std::thread tb([&] {
        PgConn b(pooler.dsn(kApp), 20s);
        b_pid = b.ok() ? server_pid(b) : "<connect failed: " + b.connect_error() + ">";
        b_done = true;
    });
    std::this_thread::sleep_for(700ms);
    EXPECT_FALSE(b_done.load()) << "b got a server while a's session held the only one";
    EXPECT_EQ(server_pid(a), pid);
    a.close();
    tb.join();
    EXPECT_EQ(b_pid, pid) << "after a left, b should get the same (reset) server";
}

TEST_F(PoolModes, SessionModeRunsResetQueryBeforeReuse) {
    PoolguardProcess pooler(base_config("session", 1));
    ASSERT_TRUE(pooler.start());
    std::string default_work_mem = pg().query_scalar("show work_mem");
    std::string pid;
    {
        PgConn a(pooler.dsn(kApp));
        ASSERT_TRUE(a.ok()) << a.connect_error();
        pid = server_pid(a);
        ASSERT_TRUE(Ok(a.exec("SET work_mem = '7MB'")));
        ASSERT_TRUE(Ok(a.exec("PREPARE reset_probe AS select 1")));
        ASSERT_TRUE(Ok(a.exec("CREATE TEMP TABLE reset_probe_t(x int)")));
        ASSERT_EQ(a.exec("show work_mem").value(), "7MB");
    }
    PgConn b(pooler.dsn(kApp));
    ASSERT_TRUE(b.ok()) << b.connect_error();
    ASSERT_EQ(server_pid(b), pid) << "the test needs the same server connection to be reused";
    EXPECT_EQ(b.exec("show work_mem").value(), default_work_mem);
    EXPECT_EQ(b.exec("select count(*) from pg_prepared_statements").value(), "0");
    EXPECT_EQ(b.exec("select to_regclass('pg_temp.reset_probe_t') is null").value(), "t");
}

TEST_F(PoolModes, TransactionModeSkipsResetQueryByDefault) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("SET work_mem = '7MB'")));
    // Like PgBouncer, server_reset_query is for session mode unless server_reset_query_always is set.
    EXPECT_EQ(c.exec("show work_mem").value(), "7MB");
}

TEST_F(PoolModes, ServerResetQueryAlwaysResetsAfterEachTransaction) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("server_reset_query_always", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    std::string default_work_mem = pg().query_scalar("show work_mem");
    PgConn c(pooler.dsn(kApp, "", "db", "application_name=keepme"));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("SET work_mem = '7MB'")));
    EXPECT_EQ(c.exec("show work_mem").value(), default_work_mem);
    // The client's own tracked parameters survive the reset.
    EXPECT_EQ(c.exec("show application_name").value(), "keepme");
}

TEST_F(PoolModes, CustomServerResetQueryRunsBeforeSessionReuse) {
    PoolerConfig cfg = base_config("session", 1);
    cfg.set("server_reset_query", "SET work_mem = '3MB'");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    {
        PgConn a(pooler.dsn(kApp));
        ASSERT_TRUE(a.ok()) << a.connect_error();
        ASSERT_TRUE(Ok(a.exec("SET work_mem = '7MB'")));
    }
    PgConn b(pooler.dsn(kApp));
    ASSERT_TRUE(b.ok()) << b.connect_error();
    EXPECT_EQ(b.exec("show work_mem").value(), "3MB");
}

TEST_F(PoolModes, MinPoolSizeOpensServersAhead) {
    PoolerConfig cfg = base_config("transaction", 5);
    cfg.set("min_pool_size", 3);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("select 1")));  // the pool exists once a client used it
    EXPECT_TRUE(eventually([&] { return pg().count_backends("usename = 'app'") >= 3; }, 10s))
        << "backends: " << pg().count_backends("usename = 'app'");
    EXPECT_LE(pg().count_backends("usename = 'app'"), 5);
}

TEST_F(PoolModes, EachDatabaseUserPairHasItsOwnPool) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.database("db2", pg().pooler_target("", "otherdb"));
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp, "", "db")), b(pooler.dsn(kApp2, "", "db")), c(pooler.dsn(kApp, "", "db2"));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    ASSERT_TRUE(c.ok()) << c.connect_error();
    // Each holds a transaction open: with pool_size=1 this only works if the three pools are distinct.
    std::set<std::string> pids;
    for (PgConn* conn : {&a, &b, &c}) {
        ASSERT_TRUE(Ok(conn->exec("BEGIN", 10s)));
        QueryResult r = conn->exec("select pg_backend_pid(), current_user, current_database()", 10s);
        ASSERT_TRUE(r.ok()) << r.describe();
        pids.insert(r.value());
    }
    EXPECT_EQ(pids.size(), 3u);
    EXPECT_EQ(a.exec("select current_user || '@' || current_database()").value(), "app@postgres");
    EXPECT_EQ(b.exec("select current_user || '@' || current_database()").value(), "app2@postgres");
    EXPECT_EQ(c.exec("select current_user || '@' || current_database()").value(), "app@otherdb");
    for (PgConn* conn : {&a, &b, &c})
        EXPECT_TRUE(Ok(conn->exec("COMMIT")));
}

}  // namespace
}  // namespace itest
