// Owns the integration tests of PgBouncer 1.25's configuration-driven behaviour against real PostgreSQL:
// client caps per database and per user (texts, SQLSTATE, no drift), [users] pool_size, host lists with a
// dead host and load_balance_hosts, per-database server_lifetime, transaction_timeout (global and per user),
// track_extra_parameters.
#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <thread>
#include <vector>

#include "fixtures.h"

namespace itest {
namespace {

class Config125 : public PoolerTest {};

std::string pid_of(PgConn& c) {
    return c.exec("select pg_backend_pid()").value();
}

TEST_F(Config125, ClientCapsPerDatabaseAndUserWithoutDrift) {
    if (PoolguardProcess::default_kind() == PoolerKind::kPgbouncer118)
        GTEST_SKIP() << "max_*_client_connections are newer than 1.18";
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("auth_type", "md5");
    cfg.database("capdb", pg().pooler_target("max_db_client_connections=2"));
    cfg.user(kApp2, "max_user_client_connections=1");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());

    // Failed logins never take a slot: many wrong passwords, then the full quota still logs in.
    for (int i = 0; i < 5; ++i) {
        PgConn wrong(pooler.dsn(kApp, "wrong", "capdb"));
        EXPECT_FALSE(wrong.ok());
    }
    auto a = std::make_unique<PgConn>(pooler.dsn(kApp, kAppPass, "capdb"));
    auto b = std::make_unique<PgConn>(pooler.dsn(kApp, kAppPass, "capdb"));
    ASSERT_TRUE(a->ok()) << a->connect_error();
    ASSERT_TRUE(b->ok()) << b->connect_error();
    LoginOutcome extra = raw_login(pooler.host(), pooler.port(), kApp, "capdb", kAppPass, 10s);
    EXPECT_FALSE(extra.ready);
    EXPECT_EQ(extra.sqlstate, "08P01") << extra.describe();
    EXPECT_EQ(extra.message, "client connections exceeded (max_db_client_connections)") << extra.describe();
    // Another database is not limited by capdb's cap.
    PgConn other(pooler.dsn(kApp, kAppPass, "db"));
    EXPECT_TRUE(other.ok()) << other.connect_error();
    // A client that dies frees its slot.
    a.reset();
    EXPECT_TRUE(eventually([&] { return PgConn(pooler.dsn(kApp, kAppPass, "capdb")).ok(); }, 5s));

    // Per user, over every database.
    PgConn u1(pooler.dsn(kApp2, kApp2Pass, "db"));
    ASSERT_TRUE(u1.ok()) << u1.connect_error();
    LoginOutcome u2 = raw_login(pooler.host(), pooler.port(), kApp2, "capdb", kApp2Pass, 10s);
    EXPECT_FALSE(u2.ready);
    EXPECT_EQ(u2.sqlstate, "08P01") << u2.describe();
    EXPECT_EQ(u2.message, "client connections exceeded (max_user_client_connections)") << u2.describe();
}

TEST_F(Config125, UsersPoolSizeCapsServers) {
    if (PoolguardProcess::default_kind() == PoolerKind::kPgbouncer118)
        GTEST_SKIP() << "[users] pool_size is newer than 1.18";
    PoolerConfig cfg = base_config("transaction", 4);
    cfg.user(kApp2, "pool_size=1");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    BackendSampler sampler(pg(), "usename = '" + kApp2 + "'");
    std::vector<std::string> dsns(3, pooler.dsn(kApp2));
    auto results = run_concurrently(dsns, "select pg_sleep(0.5)");
    for (const auto& r : results)
        EXPECT_TRUE(Ok(r));
    EXPECT_EQ(sampler.stop(), 1) << "[users] pool_size=1 must win over default_pool_size=4";
}

TEST_F(Config125, HostListSkipsADeadHost) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP() << "poolguard skips a dead host and takes host:port entries; PgBouncer 1.25.2 documents "
                        "that every host must be up";
    PoolerConfig cfg = base_config("transaction", 2);
    const std::string port = std::to_string(pg().port());
    // Port 1 on loopback refuses at once: the next host of the list serves, in the same login.
    cfg.database("dead_first",
                 "host=127.0.0.1:1,127.0.0.1 port=" + port + " dbname=postgres load_balance_hosts=disable");
    cfg.database("dead_second", "host=127.0.0.1,127.0.0.1:1 port=" + port + " dbname=postgres");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    for (const char* db : {"dead_first", "dead_second"}) {
        for (int i = 0; i < 3; ++i) {
            PgConn c(pooler.dsn(kApp, "", db));
            ASSERT_TRUE(c.ok()) << db << ": " << c.connect_error();
            EXPECT_TRUE(Ok(c.exec("BEGIN")));  // hold the server: the next client needs another one
            EXPECT_TRUE(Ok(c.exec("select 1")));
        }
    }
}

TEST_F(Config125, ReloadPicksUpHostListChanges) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP() << "poolguard skips a dead host and takes host:port entries; PgBouncer 1.25.2 documents "
                        "that every host must be up";
    const std::string port = std::to_string(pg().port());
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.database("moving", "host=127.0.0.1:1 dbname=postgres");  // nothing listens there
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    EXPECT_FALSE(PgConn(pooler.dsn(kApp, "", "moving")).ok());
    // The reloaded list has a live host: new logins use it.
    PoolerConfig fixed = base_config("transaction", 2);
    fixed.database("moving", "host=127.0.0.1:1,127.0.0.1 port=" + port + " dbname=postgres");
    ASSERT_TRUE(pooler.rewrite_config(fixed));
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    std::this_thread::sleep_for(1200ms);  // past server_login_retry of the failed login
    PgConn c(pooler.dsn(kApp, "", "moving"));
    ASSERT_TRUE(c.ok()) << c.connect_error() << "\n" << pooler.log_contents();
    const std::string before = pid_of(c);
    // Another change of the list: the server of the old list is not reused.
    PoolerConfig again = base_config("transaction", 2);
    again.database("moving", "host=127.0.0.1 port=" + port + " dbname=postgres");
    ASSERT_TRUE(pooler.rewrite_config(again));
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    std::this_thread::sleep_for(300ms);
    EXPECT_NE(pid_of(c), before) << "a server of the previous host list was handed out after the reload";
}

TEST_F(Config125, DisablePqexecClosesASimpleQueryClient) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("disable_pqexec", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn extended(pooler.dsn(kApp));
    ASSERT_TRUE(extended.ok()) << extended.connect_error();
    QueryResult ok = extended.exec_params("select $1::int + 1", {std::string("41")});
    EXPECT_TRUE(Ok(ok));
    EXPECT_EQ(ok.value(), "42");
    PgConn simple(pooler.dsn(kApp));
    ASSERT_TRUE(simple.ok()) << simple.connect_error();
    QueryResult refused = simple.exec("select 1; select 2");
    EXPECT_FALSE(refused.ok());
    EXPECT_NE(refused.error.find("PQexec disallowed"), std::string::npos) << refused.describe();
    EXPECT_TRUE(Ok(extended.exec_params("select 1", {})));  // the other client keeps its server
}

TEST_F(Config125, DefaultServerCheckIsAnEmptyQuery) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP() << "poolguard's check scheduling (background, every tick with server_check_delay=0)";
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("server_check_delay", "0");  // check at every janitor tick, with 1.25's default <empty>
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    const std::string pid = pid_of(c);
    std::this_thread::sleep_for(1500ms);  // several checks of the idle server
    // The backend's last statement is the check's empty query, not the client's.
    EXPECT_EQ(pg().query_scalar("select query from pg_stat_activity where pid = " + pid), "");
    EXPECT_EQ(pid_of(c), pid) << "a passing check must keep the server\n" << pooler.log_contents();
    EXPECT_EQ(pooler.log_contents().find("internal query failed"), std::string::npos)
        << pooler.log_contents();
}

TEST_F(Config125, ApplicationNameAddHost) {
    PoolerConfig cfg = base_config("session", 2);
    cfg.set("application_name_add_host", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn named(pooler.dsn(kApp, "", "db", "application_name=myapp"));
    ASSERT_TRUE(named.ok()) << named.connect_error();
    const std::string got = named.exec("show application_name").value();
    EXPECT_TRUE(got.starts_with("myapp - 127.0.0.1:")) << got;
    EXPECT_GT(got.size(), std::string("myapp - 127.0.0.1:").size()) << got;
    ASSERT_TRUE(Ok(named.exec("SET application_name = 'later'")));
    EXPECT_EQ(named.exec("show application_name").value(), "later");
}

TEST_F(Config125, PerDatabaseServerLifetime) {
    if (PoolguardProcess::default_kind() == PoolerKind::kPgbouncer118)
        GTEST_SKIP() << "per-database server_lifetime is newer than 1.18";
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("server_lifetime", 1800);
    cfg.database("short", pg().pooler_target("server_lifetime=1"));
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn s(pooler.dsn(kApp, "", "short")), l(pooler.dsn(kApp, "", "db"));
    ASSERT_TRUE(s.ok() && l.ok());
    const std::string s1 = pid_of(s), l1 = pid_of(l);
    std::this_thread::sleep_for(2500ms);
    EXPECT_NE(pid_of(s), s1) << "the server of 'short' outlived its 1 s lifetime";
    EXPECT_EQ(pid_of(l), l1) << "the other database's server must stay (global 1800 s)";
}

TEST_F(Config125, TransactionTimeoutPerUserOverridesGlobal) {
    if (PoolguardProcess::default_kind() == PoolerKind::kPgbouncer118)
        GTEST_SKIP() << "transaction_timeout is newer than 1.18";
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("transaction_timeout", 1);
    cfg.user(kApp2, "transaction_timeout=30");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn cut(pooler.dsn(kApp)), spared(pooler.dsn(kApp2));
    ASSERT_TRUE(cut.ok() && spared.ok());
    ASSERT_TRUE(Ok(cut.exec("BEGIN")));
    ASSERT_TRUE(Ok(spared.exec("BEGIN")));
    // A query still running when the transaction's time is up is cut too.
    QueryResult r = cut.exec("select pg_sleep(3)", 10s);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.sqlstate, "08P01") << r.describe();
    EXPECT_NE(r.error.find("transaction timeout"), std::string::npos) << r.describe();
    EXPECT_LT(r.elapsed_ms, 2500) << "cut about 1 s after BEGIN";
    EXPECT_TRUE(Ok(spared.exec("select 1")));
    EXPECT_TRUE(Ok(spared.exec("COMMIT")));
    // A single autocommit statement is a transaction too (as PgBouncer 1.25.2 counts it); idle time between
    // statements is not.
    PgConn autocommit(pooler.dsn(kApp));
    QueryResult one = autocommit.exec("select pg_sleep(3)", 10s);
    EXPECT_FALSE(one.ok());
    EXPECT_NE(one.error.find("transaction timeout"), std::string::npos) << one.describe();
    PgConn idle(pooler.dsn(kApp));
    EXPECT_TRUE(Ok(idle.exec("select 1")));
    std::this_thread::sleep_for(1500ms);
    EXPECT_TRUE(Ok(idle.exec("select 2")));
}

TEST_F(Config125, TrackExtraParametersFollowTheClientAndNeverLeak) {
    if (PoolguardProcess::default_kind() == PoolerKind::kPgbouncer118)
        GTEST_SKIP() << "track_extra_parameters is newer than 1.18";
    PoolerConfig cfg = base_config("transaction", 1);  // one server shared by both clients
    cfg.set("track_extra_parameters", "default_transaction_read_only, IntervalStyle");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok() && b.ok());
    ASSERT_TRUE(Ok(a.exec("SET default_transaction_read_only = on")));
    ASSERT_TRUE(Ok(a.exec("SET IntervalStyle = 'iso_8601'")));
    const char* q =
        "select current_setting('default_transaction_read_only') || ' ' || "
        "current_setting('IntervalStyle')";
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(a.exec(q).value(), "on iso_8601");
        EXPECT_EQ(b.exec(q).value(), "off postgres") << "a client's SET leaked to another client";
    }
}

}  // namespace
}  // namespace itest
