// Owns the integration test that the real psql binary reads every SHOW of the admin console, with PgBouncer
// 1.25's columns first, in its order (compared with a PgBouncer 1.25.2 started in the same test).
#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "fixtures.h"

namespace itest {
namespace {

class AdminShow : public PoolerTest {};

const char* const kShowCommands[] = {
    "SHOW POOLS",          "SHOW CLIENTS", "SHOW SERVERS",    "SHOW STATS", "SHOW STATS_TOTALS",
    "SHOW STATS_AVERAGES", "SHOW TOTALS",  "SHOW DATABASES",  "SHOW USERS", "SHOW CONFIG",
    "SHOW LISTS",          "SHOW VERSION", "SHOW STATE",      "SHOW FDS",   "SHOW SOCKETS",
    "SHOW ACTIVE_SOCKETS", "SHOW PEERS",   "SHOW PEER_POOLS", "SHOW MEM",   "SHOW DNS_HOSTS",
    "SHOW DNS_ZONES"};

// SHOWs whose rows are PgBouncer internals poolguard has no equivalent of (it answers the columns only), or
// lists that are empty in this configuration.
bool may_be_empty(const std::string& command) {
    for (const char* c : {"SHOW CLIENTS", "SHOW SERVERS", "SHOW PEERS", "SHOW PEER_POOLS", "SHOW MEM",
                          "SHOW DNS_HOSTS", "SHOW DNS_ZONES"})
        if (command == c) return true;
    return false;
}

// The first column of every row (SHOW TOTALS / SHOW LISTS: the names of the figures, in order).
std::vector<std::string> first_cells(const std::string& output) {
    std::vector<std::string> out;
    std::istringstream lines(output);
    std::string line;
    std::getline(lines, line);  // header
    while (std::getline(lines, line))
        out.push_back(line.substr(0, line.find('|')));
    return out;
}

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
    if (!PoolguardProcess::testing_pgbouncer() && PoolguardProcess::pgbouncer_binary().empty())
        GTEST_SKIP() << PoolguardProcess::pgbouncer_unavailable_reason();
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    // The reference: PgBouncer 1.25.2 with the same configuration.
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
        PsqlOutput got = psql_show(pooler, command);
        EXPECT_EQ(got.run.exit_code, 0) << got.run.output;
        PsqlOutput want = psql_show(reference, command);
        ASSERT_EQ(want.run.exit_code, 0) << "pgbouncer 1.25.2 itself: " << want.run.output;
        ASSERT_FALSE(want.header.empty());
        ASSERT_GE(got.header.size(), want.header.size())
            << "poolguard: " << join(got.header) << "\npgbouncer: " << join(want.header);
        std::vector<std::string> prefix(got.header.begin(),
                                        got.header.begin() + static_cast<long>(want.header.size()));
        EXPECT_EQ(join(prefix), join(want.header)) << "poolguard's columns must start with PgBouncer's";
        if (!may_be_empty(command)) {
            EXPECT_GE(got.rows, 1u) << got.run.output;
        }
        if (std::string(command) == "SHOW TOTALS" || std::string(command) == "SHOW LISTS" ||
            std::string(command) == "SHOW STATE") {
            EXPECT_EQ(join(first_cells(got.run.output)), join(first_cells(want.run.output)))
                << "the same figures, in the same order";
        }
    }
    // The one client with its server is visible (psql's own connection is listed by SHOW CLIENTS too).
    EXPECT_GE(psql_show(pooler, "SHOW CLIENTS").rows, 1u);
    EXPECT_GE(psql_show(pooler, "SHOW SERVERS").rows, 1u);
    // SHOW HELP: every line of PgBouncer's usage, in its order, then poolguard's own.
    const auto help_lines = [](const std::string& output) {
        std::vector<std::string> lines;
        std::istringstream in(output);
        for (std::string line; std::getline(in, line);)
            if (!line.empty() && line[0] == '\t') lines.push_back(line);
        return lines;
    };
    const auto got_help = help_lines(psql_show(pooler, "SHOW HELP").run.output);
    const auto want_help = help_lines(psql_show(reference, "SHOW HELP").run.output);
    ASSERT_FALSE(want_help.empty());
    ASSERT_GE(got_help.size(), want_help.size());
    EXPECT_EQ(join(std::vector<std::string>(got_help.begin(),
                                            got_help.begin() + static_cast<long>(want_help.size()))),
              join(want_help));
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
    size_t mode_col = 0;
    while (mode_col < users.columns.size() && users.columns[mode_col] != "pool_mode")
        ++mode_col;
    ASSERT_LT(mode_col, users.columns.size()) << "SHOW USERS has no pool_mode column";
    std::map<std::string, std::string> mode_by_user;
    for (const auto& row : users.rows)
        mode_by_user[row.at(0)] = row.at(mode_col);
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
