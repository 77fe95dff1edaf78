// Integration tests of the headline incident's generator (`poolguard drill --scenario incident`, issue 6
// part 6) against a real PostgreSQL, scaled down to seconds: directly, the client-side request timeout turns
// slow web requests into "timeout" failures counted at the timeout and leaked transactions stay open; through
// poolguard with classes and end_leaks on, web traffic is served while batch floods its share and the
// leaked transactions are ended with 57P01. And what the incident showed of poolguard itself: a client that
// hangs up while waiting for a server leaves the queue (and frees its max_client_conn slot) within seconds.
#include "drill/incident.h"

#include <libpq-fe.h>
#include <sys/socket.h>

#include <fmt/format.h>

#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

namespace drill = poolguard::drill;

class IncidentTest : public PoolerTest {};

const drill::IncidentRow& row(const std::vector<drill::IncidentRow>& rows, const std::string& role) {
    for (const auto& r : rows)
        if (r.role == role) return r;
    static const drill::IncidentRow none;
    ADD_FAILURE() << "no row " << role;
    return none;
}

drill::IncidentOptions small_incident(const std::string& conninfo) {
    drill::IncidentOptions o;
    o.conninfo = conninfo;
    o.duration_s = 3;
    o.web_rate = 30;
    o.web_pool = 3;
    o.timeout_s = 2;
    o.batch_jobs = 2;
    o.batch_connections = 2;
    o.batch_start_s = 0;
    o.bulk_queries = 1;
    o.bulk_seconds = 1;
    o.bulk_at = 0.2;
    return o;
}

TEST_F(IncidentTest, DirectlySlowRequestsTimeOutAndLeaksStayOpen) {
    auto o = small_incident(pg().dsn(kApp, kAppPass));
    o.timeout_s = 0.3;
    o.web_query = "select pg_sleep(0.6)";  // every web request outlives its timeout
    const auto rows = drill::run_incident(o);
    const auto text = drill::format_incident_table("direct", rows);
    const auto& web = row(rows, "web (all)");
    EXPECT_EQ(web.ok, 0u) << text;
    EXPECT_GT(web.failed, 50u) << text;  // ~30/s for 3 s, ~40/s after web-d joins at 1.5 s
    EXPECT_EQ(web.reasons.rfind("timeout", 0), 0u) << text;
    EXPECT_DOUBLE_EQ(web.p99_ms, 300.0) << text;  // failures count at the timeout
    EXPECT_GT(row(rows, "web-d").failed, 0u) << text;
    EXPECT_GE(row(rows, "batch").ok, 4u) << text;  // 4 connections, 1-3 s transactions, 3 s
    EXPECT_EQ(row(rows, "bulk-report").ok, 1u) << text;
    const auto& leaks = row(rows, "mobile-worker");
    EXPECT_GE(leaks.ok, 4u) << text;  // one every 0.5 s
    // Nothing ends a leaked transaction in PostgreSQL by default: all are still open at the end.
    EXPECT_NE(leaks.note.find(fmt::format("still open at the end {}", leaks.ok)), std::string::npos) << text;
}

TEST_F(IncidentTest, ThroughPoolguardWebIsServedAndLeaksAreEnded) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "classes and responders are poolguard's";
    PoolerConfig c = base_config("transaction", 10);
    c.raw_pgbouncer_lines = {"[poolguard]",
                             "control_user = postgres",
                             "sample_interval = 0.2",
                             "respond = on",
                             "kill_leak_after = 1",
                             "max_actions_per_minute = 100",
                             "[classes]",
                             "web = application_name=web-*, priority=0",
                             "batch = application_name=batch-*, priority=2, max_share=50",
                             "bulk = application_name=bulk-*, priority=3, max_share=10",
                             "mobile = application_name=mobile-*, priority=4, max_share=10"};
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    auto o = small_incident(pooler.dsn(kApp, kAppPass));
    o.duration_s = 5;
    o.batch_connections = 6;  // 12 batch clients for a share of 5 servers
    const auto rows = drill::run_incident(o);
    const auto text = drill::format_incident_table("poolguard", rows);
    const auto& web = row(rows, "web (all)");
    EXPECT_EQ(web.failed, 0u) << text;
    EXPECT_GT(web.ok, 150u) << text;
    EXPECT_GT(row(rows, "batch").ok, 0u) << text;
    const auto& leaks = row(rows, "mobile-worker");
    // kill_leak_after 1 s, sampled every 0.2 s: the leaks of the first seconds are ended with 57P01.
    EXPECT_NE(leaks.note.find("57P01 idle in transaction"), std::string::npos) << text;
}

// bench/incident without classes: web requests that timed out after 5 s dropped their connections, but
// their places in the queue stayed until a server reached them, so dead waiters filled max_client_conn
// (x8014 refused logins in 60 s) and kept the breaker's wait clock running.
TEST_F(IncidentTest, WaiterThatHangsUpLeavesTheQueueAndFreesItsSlot) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "PgBouncer 1.18 keeps such waiters queued";
    PoolerConfig c = base_config("transaction", 1);
    c.set("admin_users", kApp);
    c.set("max_client_conn", 4);  // holder + admin + the two waiters
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn holder(pooler.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(holder.exec("begin")));  // holds the only server
    PgConn admin(pooler.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    const auto waiting = [&] {
        const auto r = admin.exec("SHOW POOLS");
        if (!r.ok()) return -1;
        for (size_t col = 0; col < r.columns.size(); ++col)
            if (r.columns[col] == "cl_waiting")
                for (const auto& row : r.rows)
                    if (!row.empty() && row[0] == "db") return std::stoi(row[col]);
        return -1;
    };
    // One waiter says goodbye with Terminate (PQfinish), the other just closes its socket.
    PGconn* polite = PQconnectdb(pooler.dsn(kApp, kAppPass).c_str());
    PGconn* rude = PQconnectdb(pooler.dsn(kApp, kAppPass).c_str());
    ASSERT_EQ(PQstatus(polite), CONNECTION_OK);
    ASSERT_EQ(PQstatus(rude), CONNECTION_OK);
    ASSERT_TRUE(PQsendQuery(polite, "select 1") && PQsendQuery(rude, "select 1"));
    ASSERT_TRUE(eventually([&] { return waiting() == 2; }, 3s)) << waiting();
    PQfinish(polite);
    ::shutdown(PQsocket(rude), SHUT_RDWR);
    const auto t0 = Clock::now();
    EXPECT_TRUE(eventually([&] { return waiting() == 0; }, 4s)) << waiting();
    std::printf("[incident] hung-up waiters left the queue after %.1f s\n",
                std::chrono::duration<double>(Clock::now() - t0).count());
    PQfinish(rude);
    // Their max_client_conn slots are free again, and the pool still serves.
    PgConn a(pooler.dsn(kApp, kAppPass)), b(pooler.dsn(kApp, kAppPass));
    EXPECT_TRUE(a.ok()) << a.connect_error();
    EXPECT_TRUE(b.ok()) << b.connect_error();
    ASSERT_TRUE(Ok(holder.exec("commit")));
    EXPECT_TRUE(Ok(a.exec("select 1")));
}

// A capped class's long wait is its cap at work, not an exhausted database: it must not open the breaker
// (and so refuse the uncapped classes). Here web holds the whole pool, so batch (below its cap) waits past
// breaker_wait_bound; it is served when web lets go, and web still gets in meanwhile.
TEST_F(IncidentTest, CappedClassWaitingPastTheBoundDoesNotOpenTheBreaker) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "classes and the breaker are poolguard's";
    PoolerConfig c = base_config("transaction", 2);
    c.set("admin_users", kApp);
    c.set("query_wait_timeout", 30);
    c.raw_pgbouncer_lines = {"[poolguard]", "breaker_wait_bound = 1", "[classes]",
                             "web = application_name=web-*, priority=0",
                             "batch = application_name=batch-*, priority=2, max_share=50"};
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn web1(pooler.dsn(kApp, kAppPass, "db", "application_name=web-a"));
    PgConn web2(pooler.dsn(kApp, kAppPass, "db", "application_name=web-b"));
    ASSERT_TRUE(Ok(web1.exec("begin")) && Ok(web1.exec("select 1")));
    ASSERT_TRUE(Ok(web2.exec("begin")) && Ok(web2.exec("select 1")));  // web holds both servers
    PgConn batch(pooler.dsn(kApp, kAppPass, "db", "application_name=batch-1"));
    ASSERT_TRUE(batch.send("select 1"));
    std::this_thread::sleep_for(2s);  // batch waits twice breaker_wait_bound
    ASSERT_TRUE(Ok(web1.exec("commit")));
    const auto r = batch.wait(5s);
    EXPECT_TRUE(Ok(r)) << "batch was refused: " << r.describe();
    PgConn admin(pooler.dsn(kApp, kAppPass, "pgbouncer"));
    const auto breakers = admin.exec("SHOW BREAKERS");
    ASSERT_TRUE(Ok(breakers));
    ASSERT_FALSE(breakers.rows.empty());
    EXPECT_EQ(breakers.rows[0][1], "closed") << breakers.describe();
    EXPECT_EQ(breakers.rows[0][2], "0") << "opens";
    PgConn web3(pooler.dsn(kApp, kAppPass, "db", "application_name=web-c"));
    EXPECT_TRUE(Ok(web3.exec("select 1")));
    ASSERT_TRUE(Ok(web2.exec("commit")));
}

}  // namespace
}  // namespace itest
