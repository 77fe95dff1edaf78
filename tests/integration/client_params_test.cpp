// Owns the integration tests of per-client parameters (application_name, encoding, DateStyle, TimeZone).
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "fixtures.h"

namespace itest {
namespace {

class ClientParams : public PoolerTest {};

// libpq sends PGDATESTYLE / PGTZ as startup parameters "datestyle" / "timezone".
PgConn connect_with_env(const std::string& dsn, const std::string& datestyle, const std::string& tz) {
    setenv("PGDATESTYLE", datestyle.c_str(), 1);
    setenv("PGTZ", tz.c_str(), 1);
    PgConn c(dsn);
    unsetenv("PGDATESTYLE");
    unsetenv("PGTZ");
    return c;
}

TEST_F(ClientParams, ApplicationNameFollowsEachClientOverOneServer) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp, "", "db", "application_name=alpha"));
    PgConn b(pooler.dsn(kApp, "", "db", "application_name=beta"));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    std::set<std::string> pids;
    for (int i = 0; i < 4; ++i) {
        for (auto [conn, name] : {std::pair{&a, "alpha"}, std::pair{&b, "beta"}}) {
            QueryResult r = conn->exec("select current_setting('application_name'), pg_backend_pid()", 10s);
            ASSERT_TRUE(r.ok()) << r.describe();
            EXPECT_EQ(r.value(0, 0), name) << "round " << i;
            pids.insert(r.value(0, 1));
        }
    }
    EXPECT_EQ(pids.size(), 1u) << "the test expects both clients on the single server connection";
}

TEST_F(ClientParams, PgStatActivityShowsApplicationNameOfRunningClient) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp, "", "db", "application_name=alpha"));
    PgConn b(pooler.dsn(kApp, "", "db", "application_name=beta"));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    for (int round = 0; round < 2; ++round) {
        for (auto [conn, name] : {std::pair{&a, "alpha"}, std::pair{&b, "beta"}}) {
            ASSERT_TRUE(conn->send("select pg_sleep(0.6)"));
            bool seen = pg().wait_until(
                "select count(*) = 1 from pg_stat_activity where usename = 'app' and state = 'active' and "
                "query like 'select pg_sleep%' and application_name = " +
                    sql_literal(name),
                5s);
            EXPECT_TRUE(seen) << name << " not visible as running; activity: "
                              << pg().exec(
                                         "select application_name, state, query from pg_stat_activity "
                                         "where usename = 'app'")
                                     .describe();
            QueryResult r = conn->wait(10s);
            ASSERT_TRUE(r.ok()) << r.describe();
        }
    }
}

TEST_F(ClientParams, EncodingDateStyleAndTimeZoneFollowEachClient) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a =
        connect_with_env(pooler.dsn(kApp, "", "db", "client_encoding=LATIN1"), "SQL, DMY", "Europe/Paris");
    PgConn b = connect_with_env(pooler.dsn(kApp, "", "db", "client_encoding=UTF8"), "ISO, MDY", "Asia/Tokyo");
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    const std::string q =
        "select current_setting('client_encoding') || '|' || current_setting('DateStyle') || '|' || "
        "current_setting('TimeZone')";
    for (int i = 0; i < 3; ++i) {
        QueryResult ra = a.exec(q, 10s);
        QueryResult rb = b.exec(q, 10s);
        ASSERT_TRUE(ra.ok()) << ra.describe();
        ASSERT_TRUE(rb.ok()) << rb.describe();
        EXPECT_EQ(ra.value(), "LATIN1|SQL, DMY|Europe/Paris") << "round " << i;
        EXPECT_EQ(rb.value(), "UTF8|ISO, MDY|Asia/Tokyo") << "round " << i;
    }
    // Values actually formatted by the server follow the client's settings.
    EXPECT_EQ(a.exec("select date '2024-03-05'::text").value(), "05/03/2024");
    EXPECT_EQ(b.exec("select date '2024-03-05'::text").value(), "2024-03-05");
}

TEST_F(ClientParams, SetByClientPersistsForThatClientOnly) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp, "", "db", "application_name=alpha"));
    PgConn b(pooler.dsn(kApp, "", "db", "application_name=beta"));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    ASSERT_TRUE(Ok(a.exec("SET application_name = 'alpha2'")));
    ASSERT_TRUE(Ok(a.exec("SET TimeZone = 'America/New_York'")));
    EXPECT_EQ(b.exec("select current_setting('application_name')").value(), "beta");
    EXPECT_NE(b.exec("select current_setting('TimeZone')").value(), "America/New_York");
    EXPECT_EQ(a.exec("select current_setting('application_name')").value(), "alpha2");
    EXPECT_EQ(a.exec("select current_setting('TimeZone')").value(), "America/New_York");
    EXPECT_EQ(b.exec("select current_setting('application_name')").value(), "beta");
}

}  // namespace
}  // namespace itest
