// Owns the integration tests of auth_user/auth_query (md5 and SCRAM users missing from the auth_file, SCRAM
// pass-through to the server), connect_query, server_check_query/server_check_delay and query_wait_notify.
#include <gtest/gtest.h>

#include <mutex>

#include "fixtures.h"

namespace itest {
namespace {

const std::string kLookup = "aq_lookup";  // the auth_user: in the auth_file, allowed to read pg_shadow
const std::string kLookupPass = "lookup-pass";
const std::string kMd5 = "aq_md5";  // not in the auth_file: found by auth_query
const std::string kMd5Pass = "md5-only pass";
const std::string kScram = "aq_scram";  // not in the auth_file: SCRAM verifier from auth_query
const std::string kScramPass = "scr@m pass";

// The server asks for passwords over TCP (pg_hba md5: md5 for md5-stored, SCRAM for SCRAM-stored ones), so
// poolguard's own server logins need the looked-up secrets.
class AuthQuery : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.hba_method = "md5";
        start_server(o);
        if (!server_->ok()) return;
        server_->create_role(kLookup, kLookupPass, PasswordKind::kScram);
        server_->exec("ALTER ROLE " + kLookup + " SUPERUSER");
        server_->create_role(kMd5, kMd5Pass, PasswordKind::kMd5);
        server_->create_role(kScram, kScramPass, PasswordKind::kScram);
    }

    static PoolerConfig lookup_config(const std::string& auth_type) {
        PoolerConfig c;
        c.database("db", pg().pooler_target());
        c.set("pool_mode", "transaction");
        c.set("default_pool_size", 2);
        c.set("server_login_retry", 1);
        c.set("auth_type", auth_type);
        c.set("auth_user", kLookup);
        c.auth(kLookup, kLookupPass);  // the only user poolguard knows a password for
        return c;
    }
};

TEST_F(AuthQuery, Md5UserMissingFromAuthFileLogsInWithPasswordFromDatabase) {
    PoolguardProcess pooler(lookup_config("md5"));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kMd5, kMd5Pass), 15s);
    ASSERT_TRUE(c.ok()) << c.connect_error() << "\n" << pooler.log_contents();
    QueryResult r = c.exec("select current_user");
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), kMd5) << "the server login is the client's own user";
    PgConn wrong(pooler.dsn(kMd5, "not the password"), 15s);
    EXPECT_FALSE(wrong.ok());
    EXPECT_NE(wrong.connect_error().find("password authentication failed"), std::string::npos)
        << wrong.connect_error();
}

TEST_F(AuthQuery, ScramUserMissingFromAuthFileLogsInThroughScramPassThrough) {
    PoolguardProcess pooler(lookup_config("scram-sha-256"));
    ASSERT_TRUE(pooler.start());
    {
        PgConn c(pooler.dsn(kScram, kScramPass), 15s);
        ASSERT_TRUE(c.ok()) << c.connect_error() << "\n" << pooler.log_contents();
        QueryResult r = c.exec("select current_user");
        ASSERT_TRUE(r.ok()) << r.describe() << "\n" << pooler.log_contents();
        EXPECT_EQ(r.value(), kScram);
    }
    // More clients at once: the pool opens further servers with the keys it learnt.
    std::vector<std::string> dsns(4, pooler.dsn(kScram, kScramPass));
    for (const auto& r : run_concurrently(dsns, "select current_user, pg_sleep(0.3)"))
        EXPECT_TRUE(Ok(r));
    EXPECT_GE(pg().count_backends("usename = '" + kScram + "'"), 2);
    PgConn wrong(pooler.dsn(kScram, "wrong"), 15s);
    EXPECT_FALSE(wrong.ok());
}

TEST_F(AuthQuery, UnknownUserIsRefusedWith28P01) {
    PoolguardProcess pooler(lookup_config("md5"));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn("nobody_here", "x"), 15s);
    EXPECT_FALSE(c.ok());
    EXPECT_NE(c.connect_error().find("password authentication failed"), std::string::npos)
        << c.connect_error();
    // The auth_user's own lookups went through one pooled server connection, not one per login.
    EXPECT_LE(pg().count_backends("usename = '" + kLookup + "'"), 2);
}

TEST_F(AuthQuery, PerDatabaseAuthUserAndCustomAuthQuery) {
    ASSERT_TRUE(Ok(pg().exec(
        "CREATE OR REPLACE FUNCTION public.aq_lookup_fn(u text) RETURNS TABLE(usename name, passwd text) "
        "LANGUAGE sql SECURITY DEFINER AS $$ SELECT usename, passwd FROM pg_shadow WHERE usename = u $$")));
    PoolerConfig c = lookup_config("md5");
    c.set("auth_user", "");
    c.databases.clear();
    c.database("db", pg().pooler_target("auth_user=" + kLookup));
    c.set("auth_query", "SELECT usename, passwd FROM public.aq_lookup_fn($1)");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn conn(pooler.dsn(kMd5, kMd5Pass), 15s);
    ASSERT_TRUE(conn.ok()) << conn.connect_error() << "\n" << pooler.log_contents();
    EXPECT_TRUE(Ok(conn.exec("select 1")));
}

TEST_F(AuthQuery, PerDatabaseAuthQueryOverridesTheGlobalOne) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "per-database auth_query is newer than 1.18";
    // The global query would fail; the database's own (PgBouncer 1.25 [databases] auth_query) is the one run.
    PoolerConfig c = lookup_config("md5");
    c.set("auth_query", "SELECT usename, passwd FROM no_such_table WHERE usename=$1");
    c.databases.clear();
    c.database("db",
               pg().pooler_target("auth_query='SELECT usename, passwd FROM pg_shadow WHERE usename=$1'"));
    c.database("other", pg().pooler_target());
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn conn(pooler.dsn(kMd5, kMd5Pass), 15s);
    ASSERT_TRUE(conn.ok()) << conn.connect_error() << "\n" << pooler.log_contents();
    EXPECT_TRUE(Ok(conn.exec("select 1")));
    PgConn other(pooler.dsn(kMd5, kMd5Pass, "other"), 15s);
    EXPECT_FALSE(other.ok());
    EXPECT_NE(other.connect_error().find("no_such_table"), std::string::npos) << other.connect_error();
}

TEST_F(AuthQuery, FailingAuthQueryGivesTheServersError) {
    PoolerConfig c = lookup_config("md5");
    c.set("auth_query", "SELECT usename, passwd FROM no_such_table WHERE usename=$1");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn conn(pooler.dsn(kMd5, kMd5Pass), 15s);
    EXPECT_FALSE(conn.ok());
    EXPECT_NE(conn.connect_error().find("no_such_table"), std::string::npos) << conn.connect_error();
}

class ServerChecks : public PoolerTest {};

TEST_F(ServerChecks, ConnectQueryRunsOnEveryNewServerConnection) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.databases.clear();
    cfg.database("db", pg().pooler_target("connect_query='SELECT set_config(''poolguard.origin'', "
                                          "''connect_query'', false)'"));
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    std::vector<std::string> dsns(2, pooler.dsn(kApp));
    for (const auto& r :
         run_concurrently(dsns, "select current_setting('poolguard.origin'), pg_sleep(0.3)")) {
        ASSERT_TRUE(Ok(r));
        EXPECT_EQ(r.value(), "connect_query");
    }
}

TEST_F(ServerChecks, FailingConnectQueryClosesTheServerAndClientGetsError) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.databases.clear();
    cfg.database("db", pg().pooler_target("connect_query='select 1/0'"));
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    auto start = Clock::now();
    PgConn c(pooler.dsn(kApp), 10s);
    ASSERT_FALSE(c.ok()) << "a server whose connect_query fails must never serve a client";
    EXPECT_LT(elapsed_ms(start), 3000)
        << "a failing connect_query is a login failure: the client is told at once";
    EXPECT_NE(c.connect_error().find("division by zero"), std::string::npos) << c.connect_error();
    // server_login_retry keeps poolguard from hammering the server with new connections.
    std::this_thread::sleep_for(500ms);
    EXPECT_LE(pg().count_backends("usename = 'app'"), 1);
}

TEST_F(ServerChecks, IdleServerIsCheckedAfterDelayAndFailedCheckClosesIt) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("server_check_delay", "0.5");
    cfg.set("server_check_query", "select 'poolguard-check'");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult pid = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(Ok(pid));
    // The idle server's last statement becomes the check query.
    EXPECT_TRUE(eventually(
        [&] {
            return pg().count_backends("pid = " + pid.value() +
                                       " and query = 'select ''poolguard-check'''") == 1;
        },
        3s));
    // A check does not count as use: server_idle_timeout still closes the server.
    PoolerConfig idle = cfg;
    idle.set("server_idle_timeout", 1);
    ASSERT_TRUE(pooler.rewrite_config(idle));
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    EXPECT_TRUE(eventually([&] { return pg().count_backends("pid = " + pid.value()) == 0; }, 5s))
        << "checked servers must still reach server_idle_timeout";
    // A failing check closes the server; the next client gets a fresh one.
    PoolerConfig failing = cfg;
    failing.set("server_check_query", "select 1/0");
    ASSERT_TRUE(pooler.rewrite_config(failing));
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    std::this_thread::sleep_for(300ms);
    QueryResult pid2 = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(Ok(pid2));
    EXPECT_TRUE(eventually([&] { return pg().count_backends("pid = " + pid2.value()) == 0; }, 3s))
        << "a server whose check fails is closed";
    EXPECT_TRUE(Ok(c.exec("select 1")));
}

TEST_F(ServerChecks, WaitingClientGetsNoticeAfterQueryWaitNotify) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP() << "query_wait_notify is newer than PgBouncer 1.18";
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("query_wait_notify", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn holder(pooler.dsn(kApp));
    ASSERT_TRUE(Ok(holder.exec("BEGIN")));
    ASSERT_TRUE(Ok(holder.exec("select 1")));
    PgConn waiter(pooler.dsn(kApp));
    ASSERT_TRUE(waiter.ok()) << waiter.connect_error();
    static std::mutex mu;
    static std::vector<std::string> notices;
    {
        std::lock_guard lock(mu);
        notices.clear();
    }
    PQsetNoticeProcessor(
        waiter.get(),
        [](void*, const char* message) {
            std::lock_guard lock(mu);
            notices.emplace_back(message);
        },
        nullptr);
    ASSERT_TRUE(waiter.send("select 42"));
    std::this_thread::sleep_for(1600ms);
    ASSERT_TRUE(Ok(holder.exec("COMMIT")));
    QueryResult r = waiter.wait(5s);
    ASSERT_TRUE(Ok(r));
    EXPECT_EQ(r.value(), "42");
    std::lock_guard lock(mu);
    ASSERT_EQ(notices.size(), 1u);
    EXPECT_NE(notices[0].find("No server connection available"), std::string::npos) << notices[0];
}

// 1.24+: a user known only to auth_query, asking for a database that does not exist, is told so only after
// proving its password (looked up in the global auth_dbname); a wrong password learns nothing.
TEST_F(AuthQuery, UnknownDatabaseIsReportedOnlyAfterTheLookedUpPasswordMatches) {
    PoolerConfig c = lookup_config("md5");
    c.set("auth_dbname", "db");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    LoginOutcome right = raw_login(pooler.host(), pooler.port(), kMd5, "nodb", kMd5Pass, 15s);
    EXPECT_FALSE(right.ready) << right.describe();
    EXPECT_EQ(right.auth_method, "md5") << right.describe();
    EXPECT_NE(right.message.find("no such database: nodb"), std::string::npos) << right.describe() << "\n"
                                                                               << pooler.log_contents();
    LoginOutcome wrong = raw_login(pooler.host(), pooler.port(), kMd5, "nodb", "not the password", 15s);
    EXPECT_FALSE(wrong.ready) << wrong.describe();
    EXPECT_EQ(wrong.message.find("no such database"), std::string::npos) << wrong.describe();
}

}  // namespace
}  // namespace itest
