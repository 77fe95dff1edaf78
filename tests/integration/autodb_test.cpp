// Owns the integration test of autodb_idle_timeout (issue 13): a pool made from the "*" entry is dropped
// (gone from SHOW POOLS) once it had no client and no server for that long — its idle servers keep it until
// server_idle_timeout closes them, as in PgBouncer 1.25.2; one in use, and configured databases, stay.
#include <gtest/gtest.h>

#include "fixtures.h"

namespace itest {
namespace {

class AutodbIdle : public PoolerTest {};

bool pool_listed(PgConn& admin, const std::string& database) {
    auto r = admin.exec("SHOW POOLS");
    for (const auto& row : r.rows)
        if (!row.empty() && row[0] == database) return true;
    return false;
}

TEST_F(AutodbIdle, UnusedAutoDatabasePoolIsDropped) {
    auto cfg = base_config("transaction", 2);
    cfg.database("*", "host=127.0.0.1 port=" + std::to_string(pg().port()));
    cfg.set("admin_users", kApp);
    cfg.set("autodb_idle_timeout", 2);
    cfg.set("server_idle_timeout", 1);  // the idle server goes after 1 s; the pool 2 s later
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    {
        PgConn c(p.dsn(kApp, kAppPass, "postgres", "application_name=autodb_gone"));
        ASSERT_TRUE(Ok(c.exec("SELECT 1")));
        PgConn configured(p.dsn(kApp, kAppPass, "db", "application_name=autodb_kept"));
        ASSERT_TRUE(Ok(configured.exec("SELECT 1")));
    }
    ASSERT_TRUE(pool_listed(admin, "postgres"));
    EXPECT_EQ(pg().count_backends("application_name = 'autodb_gone'"), 1) << "idle server kept by the pool";

    // A client that stays keeps its auto-database pool.
    PgConn holder(p.dsn(kApp2, kApp2Pass, "template1", "application_name=autodb_holder"));
    ASSERT_TRUE(Ok(holder.exec("SELECT 1")));

    EXPECT_TRUE(eventually([&] { return !pool_listed(admin, "postgres"); }, 8s)) << p.log_contents();
    EXPECT_TRUE(eventually([&] { return pg().count_backends("application_name = 'autodb_gone'") == 0; }, 3s));
    EXPECT_TRUE(pool_listed(admin, "db")) << "a configured database is never dropped";
    EXPECT_TRUE(pool_listed(admin, "template1")) << "in use by a connected client";
    EXPECT_TRUE(Ok(holder.exec("SELECT 2")));

    // The auto-database works again afterwards (a new pool).
    PgConn again(p.dsn(kApp, kAppPass, "postgres"));
    EXPECT_TRUE(Ok(again.exec("SELECT 1")));
    EXPECT_TRUE(pool_listed(admin, "postgres"));
}

}  // namespace
}  // namespace itest
