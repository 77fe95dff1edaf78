// Owns the self-tests of the integration harness (TempPostgres, PgConn, raw login), run without the pooler.
#include <gtest/gtest.h>

#include "pg_client.h"
#include "temp_postgres.h"

namespace itest {
namespace {

TEST(Harness, TempPostgresAnswersSelectOne) {
    TempPostgres pg;
    ASSERT_TRUE(pg.ok()) << pg.error();
    EXPECT_EQ(pg.query_scalar("select 1"), "1");
    PgConn c(pg.dsn("postgres"));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult r = c.exec("select 1");
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), "1");
}

TEST(Harness, TempPostgresChecksMd5AndScramPasswordsOverTcp) {
    TempPostgresOptions opts;
    opts.hba_method = "md5";  // md5 in pg_hba also accepts SCRAM-stored passwords (with SCRAM)
    TempPostgres pg(opts);
    ASSERT_TRUE(pg.ok()) << pg.error();
    ASSERT_TRUE(pg.create_role("md5user", "md5pass", PasswordKind::kMd5));
    ASSERT_TRUE(pg.create_role("scramuser", "scrampass", PasswordKind::kScram));
    EXPECT_EQ(pg.query_scalar("select left(rolpassword, 3) from pg_authid where rolname = 'md5user'"), "md5");
    EXPECT_EQ(pg.query_scalar("select left(rolpassword, 13) from pg_authid where rolname = 'scramuser'"),
              "SCRAM-SHA-256");

    PgConn good(pg.dsn("md5user", "md5pass"));
    EXPECT_TRUE(good.ok()) << good.connect_error();
    PgConn bad(pg.dsn("md5user", "wrong"));
    EXPECT_FALSE(bad.ok());

    LoginOutcome md5_ok = raw_login(pg.host(), pg.port(), "md5user", "postgres", "md5pass");
    EXPECT_TRUE(md5_ok.ready) << md5_ok.describe();
    EXPECT_EQ(md5_ok.auth_method, "md5");
    LoginOutcome md5_bad = raw_login(pg.host(), pg.port(), "md5user", "postgres", "nope");
    EXPECT_FALSE(md5_bad.ready);
    EXPECT_EQ(md5_bad.sqlstate, "28P01") << md5_bad.describe();

    LoginOutcome scram_ok = raw_login(pg.host(), pg.port(), "scramuser", "postgres", "scrampass");
    EXPECT_TRUE(scram_ok.ready) << scram_ok.describe();
    EXPECT_EQ(scram_ok.auth_method, "scram-sha-256");
    LoginOutcome scram_bad = raw_login(pg.host(), pg.port(), "scramuser", "postgres", "nope");
    EXPECT_FALSE(scram_bad.ready);
    EXPECT_EQ(scram_bad.sqlstate, "28P01") << scram_bad.describe();
}

TEST(Harness, ExecReportsSqlstateAndTimesOutWithCancel) {
    TempPostgres pg;
    ASSERT_TRUE(pg.ok()) << pg.error();
    PgConn c(pg.dsn("postgres"));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult r = c.exec("select * from no_such_table");
    EXPECT_EQ(r.sqlstate, "42P01") << r.describe();
    QueryResult slow = c.exec("select pg_sleep(10)", 300ms);
    EXPECT_TRUE(slow.timed_out) << slow.describe();
    EXPECT_EQ(slow.sqlstate, "57014") << slow.describe();
    EXPECT_LT(slow.elapsed_ms, 5000);
    EXPECT_EQ(c.exec("select 2").value(), "2");
}

TEST(Harness, PgbenchReportIsParsed) {
    PgbenchResult r = parse_pgbench_output(
        "number of transactions actually processed: 176972\n"
        "number of failed transactions: 3 (0.002%)\n"
        "tps = 5902.345678 (without initial connection time)\n"
        "pgbench: error: client 17 aborted in command 1 (SQL) of script 0; perhaps the backend died\n"
        "pgbench: error: client 3 aborted while establishing connection\n");
    EXPECT_EQ(r.processed, 176972);
    EXPECT_EQ(r.failed, 3);
    EXPECT_NEAR(r.tps, 5902.35, 0.01);
    EXPECT_EQ(r.aborted_clients, 2);
}

TEST(Harness, PgbenchRunsAgainstTempPostgres) {
    TempPostgres pg;
    ASSERT_TRUE(pg.ok()) << pg.error();
    RunResult init = pg.pgbench_init(1);
    ASSERT_EQ(init.exit_code, 0) << init.output;
    PgbenchResult r = run_pgbench({"-h", pg.host(), "-p", std::to_string(pg.port()), "-U", "postgres", "-n",
                                   "-S", "-c", "4", "-j", "2", "-T", "1", "postgres"},
                                  60s);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(r.failed, 0) << r.describe();
    EXPECT_EQ(r.aborted_clients, 0) << r.describe();
    EXPECT_GT(r.processed, 0) << r.describe();
    EXPECT_GT(r.tps, 0) << r.describe();
}

}  // namespace
}  // namespace itest
