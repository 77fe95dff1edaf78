// Owns the integration test that the real psql binary reads every SHOW of the admin console, with PgBouncer
// 1.18's columns first (compared with a PgBouncer 1.18 started in the same test).
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "fixtures.h"

namespace itest {
namespace {

class AdminShow : public PoolerTest {};

const char* const kShowCommands[] = {"SHOW POOLS",     "SHOW CLIENTS",      "SHOW SERVERS",
                                     "SHOW STATS",     "SHOW STATS_TOTALS", "SHOW STATS_AVERAGES",
                                     "SHOW DATABASES", "SHOW USERS",        "SHOW CONFIG",
                                     "SHOW LISTS",     "SHOW VERSION",      "SHOW STATE"};

struct PsqlOutput {
    RunResult run;
    std::vector<std::string> header;  // column names of the first line
    size_t rows = 0;                  // lines after the header
};

// `psql -X -A -c command` against the admin console; unaligned output, '|' separated, no footer.
PsqlOutput psql_show(const PoolguardProcess& pooler, const std::string& command) {
    SpawnOptions o;
    o.argv = {"psql",
              "-X",
              "-A",
              "-F",
              "|",
              "-P",
              "footer=off",
              "-v",
              "ON_ERROR_STOP=1",
              "-c",
              command,
              "-d",
              pooler.dsn(kApp, kAppPass, "pgbouncer")};
    o.extra_env = {"PGCONNECT_TIMEOUT=5", "PGSSLMODE=disable", "PGGSSENCMODE=disable",
                   "PAGER=", "PSQL_PAGER="};
    PsqlOutput out;
    out.run = run_command(o, 15s);
    std::istringstream lines(out.run.output);
    std::string line;
    bool first = true;
    while (std::getline(lines, line)) {
        if (first) {
            std::istringstream cols(line);
            std::string col;
            while (std::getline(cols, col, '|'))
                out.header.push_back(col);
            first = false;
        } else {
            ++out.rows;
        }
    }
    return out;
}

std::string join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v)
        s += (s.empty() ? "" : "|") + x;
    return s;
}

TEST_F(AdminShow, PsqlReadsEveryShowWithPgBouncerColumnsFirst) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    // The reference: PgBouncer 1.18 with the same configuration.
    PoolguardProcess reference(cfg, PoolerKind::kPgbouncer);
    ASSERT_TRUE(reference.start());
    // Something to show: a client with a server, on both.
    PgConn client(pooler.dsn(kApp));
    ASSERT_TRUE(client.ok()) << client.connect_error();
    ASSERT_TRUE(Ok(client.exec("select 1")));
    PgConn reference_client(reference.dsn(kApp));
    ASSERT_TRUE(reference_client.ok()) << reference_client.connect_error();
    ASSERT_TRUE(Ok(reference_client.exec("select 1")));

    for (const char* command : kShowCommands) {
        SCOPED_TRACE(command);
        const bool is_state = std::string(command) == "SHOW STATE";
        if (is_state && PoolguardProcess::testing_pgbouncer()) continue;  // not in PgBouncer 1.18
        PsqlOutput got = psql_show(pooler, command);
        EXPECT_EQ(got.run.exit_code, 0) << got.run.output;
        if (is_state) {  // PgBouncer 1.18 has no SHOW STATE to compare with (later ones do)
            EXPECT_EQ(join(got.header), "key|value");
            EXPECT_EQ(got.rows, 3u) << got.run.output;  // active, paused, suspended
            continue;
        }
        PsqlOutput want = psql_show(reference, command);
        ASSERT_EQ(want.run.exit_code, 0) << "pgbouncer 1.18 itself: " << want.run.output;
        ASSERT_FALSE(want.header.empty());
        ASSERT_GE(got.header.size(), want.header.size())
            << "poolguard: " << join(got.header) << "\npgbouncer: " << join(want.header);
        std::vector<std::string> prefix(got.header.begin(),
                                        got.header.begin() + static_cast<long>(want.header.size()));
        EXPECT_EQ(join(prefix), join(want.header)) << "poolguard's columns must start with PgBouncer's";
        if (std::string(command) != "SHOW CLIENTS" && std::string(command) != "SHOW SERVERS") {
            EXPECT_GE(got.rows, 1u) << got.run.output;
        }
    }
    // The one client with its server is visible (psql's own connection is listed by SHOW CLIENTS too).
    EXPECT_GE(psql_show(pooler, "SHOW CLIENTS").rows, 1u);
    EXPECT_GE(psql_show(pooler, "SHOW SERVERS").rows, 1u);
}

TEST_F(AdminShow, ShowUsersListsAuthFileAndConfiguredUsersLikePgBouncer) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    cfg.user(kApp2, "pool_mode=session");
    cfg.auth("third", "x");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn admin(pooler.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    QueryResult users = admin.exec("SHOW USERS");
    ASSERT_TRUE(users.ok()) << users.describe();
    std::map<std::string, std::string> mode_by_user;
    for (const auto& row : users.rows)
        mode_by_user[row.at(0)] = row.at(1);
    EXPECT_TRUE(mode_by_user.contains(kApp)) << "an auth_file user is missing";
    EXPECT_TRUE(mode_by_user.contains("third")) << "an auth_file user is missing";
    ASSERT_TRUE(mode_by_user.contains(kApp2)) << "a [users] user is missing";
    EXPECT_EQ(mode_by_user[kApp2], "session");
}

TEST_F(AdminShow, PsqlIsRefusedForUsersNotInAdminOrStatsUsers) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PsqlOutput got = psql_show(pooler, "SHOW POOLS");
    EXPECT_NE(got.run.exit_code, 0) << got.run.output;
    EXPECT_NE(got.run.output.find("not allowed"), std::string::npos) << got.run.output;
}

}  // namespace
}  // namespace itest
