// Owns the integration tests of WAIT_CLOSE and server_fast_close (issue 13, PgBouncer 1.25's usage.md and
// config.md): WAIT_CLOSE returns once the servers RECONNECT marked are closed, and other admin consoles keep
// working meanwhile; server_fast_close closes a session-mode server (and its client) at the end of the
// transaction instead of the session's end.
#include <gtest/gtest.h>

#include "fixtures.h"

namespace itest {
namespace {

class WaitClose : public PoolerTest {};

long long backends_of(TempPostgres& pg, const std::string& app) {
    return pg.count_backends("application_name = '" + app + "'");
}

TEST_F(WaitClose, ReturnsAtOnceWithNothingToClose) {
    auto cfg = base_config("session", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    auto r = admin.exec("WAIT_CLOSE", 5s);
    EXPECT_TRUE(Ok(r));
    EXPECT_LT(r.elapsed_ms, 1000);
    EXPECT_FALSE(admin.exec("WAIT_CLOSE no_such_db").ok());
}

TEST_F(WaitClose, WaitsForTheSessionsServerAndOthersKeepWorking) {
    auto cfg = base_config("session", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn client(p.dsn(kApp, kAppPass, "db", "application_name=wc_holder"));
    ASSERT_TRUE(Ok(client.exec("SELECT 1")));  // session mode: holds its server until it leaves
    ASSERT_EQ(backends_of(pg(), "wc_holder"), 1);

    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(Ok(admin.exec("RECONNECT db")));
    ASSERT_TRUE(admin.send("WAIT_CLOSE db"));  // one statement: PgBouncer takes no more per query
    std::this_thread::sleep_for(700ms);
    EXPECT_FALSE(admin.result_ready()) << "WAIT_CLOSE returned while the server is still open";

    // Another admin console is served meanwhile.
    PgConn admin2(p.dsn(kApp, kAppPass, "pgbouncer"));
    auto pools = admin2.exec("SHOW POOLS", 5s);
    EXPECT_TRUE(Ok(pools));
    EXPECT_LT(pools.elapsed_ms, 2000);

    client.close();  // the session ends: its server is closed (RECONNECT), WAIT_CLOSE returns
    auto r = admin.wait(10s);
    EXPECT_TRUE(Ok(r)) << r.describe();
    EXPECT_TRUE(eventually([&] { return backends_of(pg(), "wc_holder") == 0; }, 3s));
    EXPECT_TRUE(Ok(admin.exec("SHOW POOLS")));
}

TEST_F(WaitClose, AReloadThatChangesTheDatabaseMarksItsServers) {
    auto cfg = base_config("session", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn client(p.dsn(kApp, kAppPass, "db", "application_name=wc_reload"));
    ASSERT_TRUE(Ok(client.exec("SELECT 1")));
    auto changed = cfg;
    changed.databases.clear();
    changed.database("db", pg().pooler_target("", "template1"));  // another server database
    ASSERT_TRUE(p.rewrite_config(changed));
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(Ok(admin.exec("RELOAD")));
    ASSERT_TRUE(admin.send("WAIT_CLOSE"));
    std::this_thread::sleep_for(700ms);
    EXPECT_FALSE(admin.result_ready()) << "the session's server still uses the old database";
    client.close();
    auto r = admin.wait(10s);
    EXPECT_TRUE(Ok(r)) << r.describe();
    PgConn fresh(p.dsn(kApp, kAppPass));
    auto db = fresh.exec("SELECT current_database()");
    ASSERT_TRUE(Ok(db));
    EXPECT_EQ(db.value(), "template1");
}

TEST_F(WaitClose, ServerFastCloseEndsTheSessionAtTheTransactionEnd) {
    auto cfg = base_config("session", 2);
    cfg.set("admin_users", kApp);
    cfg.set("server_fast_close", 1);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn idle(p.dsn(kApp, kAppPass, "db", "application_name=fc_idle"));
    ASSERT_TRUE(Ok(idle.exec("SELECT 1")));
    PgConn busy(p.dsn(kApp2, kApp2Pass, "db", "application_name=fc_busy"));
    ASSERT_TRUE(Ok(busy.exec("BEGIN")));
    ASSERT_TRUE(Ok(busy.exec("SELECT 1")));

    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(Ok(admin.exec("RECONNECT")));
    // The session between transactions is closed at once, with its client.
    EXPECT_TRUE(eventually([&] { return backends_of(pg(), "fc_idle") == 0; }, 3s));
    auto r = idle.exec("SELECT 1", 5s);
    EXPECT_FALSE(r.ok()) << r.describe();
    // The one in a transaction finishes it, then goes.
    EXPECT_EQ(backends_of(pg(), "fc_busy"), 1);
    EXPECT_TRUE(Ok(busy.exec("SELECT 2")));
    EXPECT_TRUE(Ok(busy.exec("COMMIT")));
    EXPECT_TRUE(eventually([&] { return backends_of(pg(), "fc_busy") == 0; }, 3s));
    auto after = busy.exec("SELECT 1", 5s);
    EXPECT_FALSE(after.ok()) << after.describe();
    // WAIT_CLOSE has nothing left to wait for.
    auto w = admin.exec("WAIT_CLOSE", 5s);
    EXPECT_TRUE(Ok(w));
    EXPECT_LT(w.elapsed_ms, 1500);
    // New sessions are served by new servers.
    PgConn fresh(p.dsn(kApp, kAppPass));
    EXPECT_TRUE(Ok(fresh.exec("SELECT 1")));
}

TEST_F(WaitClose, WithoutServerFastCloseSessionsKeepTheirServer) {
    auto cfg = base_config("session", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn idle(p.dsn(kApp, kAppPass, "db", "application_name=nofc_idle"));
    ASSERT_TRUE(Ok(idle.exec("SELECT 1")));
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(Ok(admin.exec("RECONNECT")));
    std::this_thread::sleep_for(500ms);
    EXPECT_TRUE(Ok(idle.exec("SELECT 1")));
    EXPECT_EQ(backends_of(pg(), "nofc_idle"), 1);
}

TEST_F(WaitClose, SuspendDropsClientsWhoseOutputDoesNotFlush) {
    auto cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    cfg.set("suspend_timeout", 1);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn reader(p.dsn(kApp2, kApp2Pass));
    ASSERT_TRUE(Ok(reader.exec("SELECT 1")));
    // A client that asks for ~100 MB and never reads: poolguard's write to it cannot finish.
    PgConn stuck(p.dsn(kApp, kAppPass, "db", "application_name=suspend_stuck"));
    ASSERT_TRUE(Ok(stuck.exec("SELECT 1")));
    ASSERT_TRUE(stuck.send("SELECT repeat('x', 1000000) FROM generate_series(1, 100)"));
    std::this_thread::sleep_for(1500ms);

    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    auto r = admin.exec("SUSPEND", 10s);
    EXPECT_TRUE(Ok(r));
    EXPECT_GE(r.elapsed_ms, 800)
        << "SUSPEND returned before suspend_timeout though a client's output was stuck";
    EXPECT_LT(r.elapsed_ms, 5000);
    if (!PoolguardProcess::testing_pgbouncer()) {
        EXPECT_TRUE(p.wait_for_log("output not flushed within suspend_timeout", 3s)) << p.log_contents();
    }
    // The stuck client was closed: reading now ends in an error, not in the whole result.
    auto stuck_result = stuck.wait(10s);
    EXPECT_FALSE(stuck_result.ok()) << stuck_result.describe();
    EXPECT_TRUE(Ok(admin.exec("RESUME")));
    // The client that had nothing pending is still served.
    EXPECT_TRUE(Ok(reader.exec("SELECT 2")));
    // Without pending output SUSPEND returns at once.
    auto quick = admin.exec("SUSPEND", 5s);
    EXPECT_TRUE(Ok(quick));
    EXPECT_LT(quick.elapsed_ms, 800);
    EXPECT_TRUE(Ok(admin.exec("RESUME")));
}

}  // namespace
}  // namespace itest
