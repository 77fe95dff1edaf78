// Proves the 3 AM commands end to end against real servers: `poolguard diagnose` counts what the test set up,
// `recover` dry run changes nothing and --execute ends exactly the intended sessions while sparing protected
// ones, for PostgreSQL and MariaDB; plus the one-line errors (bad DSN, bad password, unreachable, refusal).
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "pg_client.h"
#include "subprocess.h"
#include "temp_mariadb.h"
#include "temp_postgres.h"

namespace itest {
namespace {

RunResult poolguard(std::vector<std::string> args, std::chrono::milliseconds timeout = 20s) {
    SpawnOptions o;
    o.argv = {POOLGUARD_BINARY};
    for (auto& a : args)
        o.argv.push_back(std::move(a));
    return run_command(o, timeout);
}

nlohmann::json parse_json(const RunResult& r) {
    auto j = nlohmann::json::parse(r.output, nullptr, false);
    EXPECT_FALSE(j.is_discarded()) << r.output;
    return j;
}

int app_count(const nlohmann::json& d, const std::string& app) {
    for (const auto& entry : d["top_applications"])
        if (entry["name"] == app) return entry["connections"].get<int>();
    return 0;
}

int state_count(const nlohmann::json& d, const std::string& state) {
    return d["by_state"].contains(state) ? d["by_state"][state].get<int>() : 0;
}

bool mentions_id(const std::string& output, const std::string& verb, long long id) {
    return output.find(verb + " " + std::to_string(id) + " ") != std::string::npos;
}

// ---------------------------------------------------------------- PostgreSQL

class OpsCliPostgres : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        pg_ = new TempPostgres(TempPostgresOptions{
            .max_connections = 30, .superuser_reserved_connections = 3, .hba_method = "scram-sha-256"});
        if (!pg_->ok()) return;
        pg_->create_role("app", "apppass", PasswordKind::kScram, false);
        pg_->exec("alter role postgres password 'pgpass'");
    }
    static void TearDownTestSuite() {
        delete pg_;
        pg_ = nullptr;
    }
    void SetUp() override { ASSERT_TRUE(pg_->ok()) << pg_->error(); }

    static std::string uri(const std::string& user, const std::string& password) {
        return "postgres://" + user + (password.empty() ? "" : ":" + password) +
               "@127.0.0.1:" + std::to_string(pg_->port()) + "/postgres";
    }
    static std::string app_dsn(const std::string& app) {
        return pg_->dsn("app", "apppass") + " application_name=" + app;
    }

    static TempPostgres* pg_;
};
TempPostgres* OpsCliPostgres::pg_ = nullptr;

TEST_F(OpsCliPostgres, diagnose_counts_and_recover_ends_exactly_the_intended_sessions) {
    std::vector<PgConn> idle;
    for (int i = 0; i < 3; ++i) {
        idle.emplace_back(app_dsn("idle-a"));
        ASSERT_TRUE(idle.back().ok()) << idle.back().connect_error();
        ASSERT_TRUE(idle.back().exec("select 1").ok());
    }
    PgConn itx(app_dsn("itx"));
    ASSERT_TRUE(itx.exec("begin; select 1").ok());
    PgConn kept(app_dsn("keep-me"));
    ASSERT_TRUE(kept.exec("select 1").ok());
    PgConn longy(app_dsn("longy"));
    ASSERT_TRUE(longy.send("select pg_sleep(30)"));
    ASSERT_TRUE(
        pg_->wait_until("select count(*) = 1 from pg_stat_activity where application_name = 'longy' and "
                        "state = 'active'",
                        5s));
    std::this_thread::sleep_for(1200ms);  // every session older than the 1 s limits below

    auto diag = poolguard({"diagnose", uri("postgres", "pgpass"), "--json"});
    ASSERT_EQ(diag.exit_code, 0) << diag.output;
    auto d = parse_json(diag);
    EXPECT_EQ(d["engine"], "postgresql");
    EXPECT_EQ(d["max_connections"], 30);
    EXPECT_EQ(d["reserved_connections"], 3);
    EXPECT_EQ(app_count(d, "idle-a"), 3);
    EXPECT_EQ(app_count(d, "itx"), 1);
    EXPECT_EQ(app_count(d, "longy"), 1);
    EXPECT_EQ(app_count(d, "keep-me"), 1);
    EXPECT_EQ(state_count(d, "idle in transaction"), 1);
    EXPECT_EQ(state_count(d, "active"), 2);  // pg_sleep + diagnose's own query
    // idle-a ×3 + keep-me, plus the harness's admin session when it is open
    EXPECT_GE(state_count(d, "idle"), 4);
    EXPECT_LE(state_count(d, "idle"), 5);
    EXPECT_EQ(d["verdict"], "healthy");  // nothing past the runbook's minutes yet
    auto human = poolguard({"diagnose", uri("postgres", "pgpass")});
    EXPECT_EQ(human.exit_code, 0);
    EXPECT_NE(human.output.find("VERDICT: HEALTHY"), std::string::npos) << human.output;
    EXPECT_NE(human.output.find("NEXT:"), std::string::npos);

    const long long longy_pid = PQbackendPID(longy.get());
    const long long itx_pid = PQbackendPID(itx.get());
    const long long kept_pid = PQbackendPID(kept.get());
    const std::vector<std::string> rules = {"--kill-idle", "1s", "--cancel-long", "1s",
                                            "--kill-leak", "1s", "--protect-app", "keep-*"};
    std::vector<std::string> args = {"recover", uri("postgres", "pgpass")};
    args.insert(args.end(), rules.begin(), rules.end());
    auto dry = poolguard(args);
    ASSERT_EQ(dry.exit_code, 0) << dry.output;
    EXPECT_NE(dry.output.find("DRY RUN"), std::string::npos);
    for (auto& c : idle)
        EXPECT_TRUE(mentions_id(dry.output, "would terminate pid", PQbackendPID(c.get()))) << dry.output;
    EXPECT_TRUE(mentions_id(dry.output, "would cancel    pid", longy_pid)) << dry.output;
    EXPECT_TRUE(mentions_id(dry.output, "would terminate pid", itx_pid)) << dry.output;
    EXPECT_TRUE(mentions_id(dry.output, "spared    pid", kept_pid)) << dry.output;
    EXPECT_EQ(pg_->count_backends("application_name in ('idle-a', 'itx', 'keep-me', 'longy')"), 6);
    EXPECT_TRUE(pg_->wait_until(
        "select state = 'active' from pg_stat_activity where application_name = 'longy'", 1s));

    args.push_back("--execute");
    auto run = poolguard(args);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("cancelled  pid " + std::to_string(longy_pid)), std::string::npos)
        << run.output;
    EXPECT_TRUE(pg_->wait_no_backends("application_name in ('idle-a', 'itx')", 5s));
    auto cancelled = longy.wait(5s);
    EXPECT_EQ(cancelled.sqlstate, "57014") << cancelled.describe();  // cancelled, not disconnected
    EXPECT_TRUE(longy.exec("select 1").ok());
    EXPECT_TRUE(kept.exec("select 1").ok());
    EXPECT_EQ(pg_->count_backends("application_name = 'keep-me'"), 1);
}

TEST_F(OpsCliPostgres, errors_are_one_line_with_what_to_do_and_exit_2) {
    auto bad = poolguard({"diagnose", "localhost:5432"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.output.find("bad DSN"), std::string::npos) << bad.output;
    EXPECT_NE(bad.output.find("what to do:"), std::string::npos);

    auto auth = poolguard({"diagnose", uri("app", "wrong")});
    EXPECT_EQ(auth.exit_code, 2);
    EXPECT_NE(auth.output.find("authentication failed for user app"), std::string::npos) << auth.output;
    EXPECT_NE(auth.output.find("28P01"), std::string::npos) << auth.output;

    const int closed_port = free_tcp_port();
    auto unreachable =
        poolguard({"diagnose", "postgres://app:x@127.0.0.1:" + std::to_string(closed_port) + "/db"});
    EXPECT_EQ(unreachable.exit_code, 2);
    EXPECT_NE(unreachable.output.find("cannot reach PostgreSQL at 127.0.0.1:" + std::to_string(closed_port)),
              std::string::npos)
        << unreachable.output;

    auto no_rule = poolguard({"recover", uri("postgres", "pgpass")});
    EXPECT_EQ(no_rule.exit_code, 2);
    EXPECT_NE(no_rule.output.find("at least one rule"), std::string::npos) << no_rule.output;
    auto bad_duration = poolguard({"recover", uri("postgres", "pgpass"), "--kill-idle", "5 minutes"});
    EXPECT_EQ(bad_duration.exit_code, 2);
    EXPECT_NE(bad_duration.output.find("--kill-idle"), std::string::npos) << bad_duration.output;
}

TEST_F(OpsCliPostgres, diagnose_watch_and_watch_sample_repeatedly_with_a_trend) {
    auto repeated = poolguard({"diagnose", uri("postgres", "pgpass"), "--json", "--watch", "0.3"}, 1500ms);
    EXPECT_TRUE(repeated.timed_out);  // runs until stopped
    int samples = 0;
    size_t start = 0;
    while (start < repeated.output.size()) {
        const size_t end = repeated.output.find('\n', start);
        const std::string line = repeated.output.substr(start, end == std::string::npos ? end : end - start);
        start = end == std::string::npos ? repeated.output.size() : end + 1;
        if (line.empty()) continue;
        auto j = nlohmann::json::parse(line, nullptr, false);
        ASSERT_FALSE(j.is_discarded()) << line;
        EXPECT_TRUE(j.contains("pattern")) << line;
        EXPECT_TRUE(j.contains("verdict")) << line;
        ++samples;
    }
    EXPECT_GE(samples, 3) << repeated.output;

    auto live = poolguard({"watch", uri("postgres", "pgpass"), "--interval", "0.3"}, 1500ms);
    EXPECT_TRUE(live.timed_out);
    EXPECT_NE(live.output.find("Slots    ["), std::string::npos) << live.output;
    EXPECT_NE(live.output.find("Trend    "), std::string::npos) << live.output;
    EXPECT_NE(live.output.find("Alert    off"), std::string::npos) << live.output;
}

TEST(OpsCliPostgresFull, refusal_53300_says_use_a_superuser_and_the_superuser_still_gets_in) {
    TempPostgres pg(TempPostgresOptions{.max_connections = 6, .superuser_reserved_connections = 2});
    ASSERT_TRUE(pg.ok()) << pg.error();
    ASSERT_TRUE(pg.create_role("app", "apppass", PasswordKind::kScram, false));
    std::vector<PgConn> hogs;
    for (int i = 0; i < 6; ++i) {
        PgConn c(pg.dsn("app", "apppass"));
        if (!c.ok()) break;
        hogs.push_back(std::move(c));
    }
    const std::string port = std::to_string(pg.port());
    auto refused = poolguard({"diagnose", "postgres://app:apppass@127.0.0.1:" + port + "/postgres"});
    EXPECT_EQ(refused.exit_code, 2);
    EXPECT_NE(refused.output.find("53300"), std::string::npos) << refused.output;
    EXPECT_NE(refused.output.find("connect as a superuser"), std::string::npos) << refused.output;
    auto su = poolguard({"diagnose", "postgres://postgres@127.0.0.1:" + port + "/postgres", "--json"});
    ASSERT_EQ(su.exit_code, 0) << su.output;
    auto d = parse_json(su);
    EXPECT_EQ(d["verdict"], "critical");
    EXPECT_GE(d["utilization"].get<double>(), 1.0);
}

// ---------------------------------------------------------------- MariaDB

class OpsCliMariadb : public ::testing::Test {
  protected:
    static void SetUpTestSuite() {
        my_ = new TempMariadb(TempMariadbOptions{.max_connections = 20});
        if (!my_->ok()) return;
        my_->exec("CREATE DATABASE t");
        my_->exec("CREATE TABLE t.x (id INT PRIMARY KEY) ENGINE=InnoDB");
        my_->create_user("admin", "adminpass", "ALL PRIVILEGES ON *.*");
        my_->create_user("app", "apppass", "ALL ON t.*");
        my_->create_user("keeper", "keeppass", "ALL ON t.*");
    }
    static void TearDownTestSuite() {
        delete my_;
        my_ = nullptr;
    }
    void SetUp() override { ASSERT_TRUE(my_->ok()) << my_->error(); }

    static TempMariadb* my_;
};
TempMariadb* OpsCliMariadb::my_ = nullptr;

TEST_F(OpsCliMariadb, diagnose_counts_and_recover_ends_exactly_the_intended_sessions) {
    std::vector<MyConn> idle;
    for (int i = 0; i < 3; ++i) {
        idle.emplace_back("app", "apppass", my_->port());
        ASSERT_TRUE(idle.back().ok()) << idle.back().error();
    }
    MyConn itx("app", "apppass", my_->port());
    ASSERT_TRUE(itx.query("START TRANSACTION")) << itx.error();
    ASSERT_TRUE(itx.query("INSERT INTO t.x VALUES (1)")) << itx.error();
    MyConn kept("keeper", "keeppass", my_->port());
    ASSERT_TRUE(kept.ok()) << kept.error();
    MyConn sleeper("app", "apppass", my_->port());
    ASSERT_TRUE(sleeper.query_async("SELECT SLEEP(30)"));
    std::this_thread::sleep_for(2200ms);  // PROCESSLIST.TIME counts whole seconds: > 1 s needs 2

    const std::string admin = my_->dsn("admin", "adminpass");
    auto diag = poolguard({"diagnose", admin, "--json"});
    ASSERT_EQ(diag.exit_code, 0) << diag.output;
    auto d = parse_json(diag);
    EXPECT_EQ(d["engine"], "mysql");
    EXPECT_EQ(d["max_connections"], 20);
    EXPECT_EQ(d["reserved_connections"], 0);
    EXPECT_EQ(state_count(d, "idle"), 4);  // app ×3 + keeper
    EXPECT_EQ(state_count(d, "idle in transaction"), 1);
    EXPECT_EQ(state_count(d, "active"), 2);  // SLEEP(30) + diagnose's own query
    EXPECT_EQ(d["used_connections"], 7);

    std::vector<std::string> args = {"recover",     admin, "--kill-idle",    "1s",   "--cancel-long", "1s",
                                     "--kill-leak", "1s",  "--protect-user", "keep*"};
    auto dry = poolguard(args);
    ASSERT_EQ(dry.exit_code, 0) << dry.output;
    for (auto& c : idle)
        EXPECT_TRUE(mentions_id(dry.output, "would terminate thread", c.thread_id())) << dry.output;
    EXPECT_TRUE(mentions_id(dry.output, "would terminate thread", itx.thread_id())) << dry.output;
    EXPECT_TRUE(mentions_id(dry.output, "would cancel    thread", sleeper.thread_id())) << dry.output;
    EXPECT_NE(dry.output.find("[KILL QUERY " + std::to_string(sleeper.thread_id()) + "]"), std::string::npos);
    EXPECT_TRUE(mentions_id(dry.output, "spared    thread", kept.thread_id())) << dry.output;
    EXPECT_EQ(my_->count_threads("USER IN ('app', 'keeper')"), 6);
    EXPECT_EQ(my_->count_threads("INFO LIKE 'SELECT SLEEP(30)%'"), 1);

    args.push_back("--execute");
    auto run = poolguard(args);
    ASSERT_EQ(run.exit_code, 0) << run.output;
    EXPECT_NE(run.output.find("[KILL " + std::to_string(itx.thread_id()) + "]"), std::string::npos)
        << run.output;
    sleeper.finish_async();  // KILL QUERY ends SLEEP() early; the connection stays
    const auto deadline = Clock::now() + 5s;
    while (my_->count_threads("USER = 'app'") != 1 && Clock::now() < deadline)
        std::this_thread::sleep_for(50ms);
    EXPECT_EQ(my_->count_threads("USER = 'app'"), 1);  // only the sleeper's connection is left
    EXPECT_EQ(my_->count_threads("ID = " + std::to_string(sleeper.thread_id())), 1);
    EXPECT_EQ(my_->count_threads("INFO LIKE 'SELECT SLEEP(30)%'"), 0);
    EXPECT_EQ(my_->count_threads("USER = 'keeper'"), 1);
    EXPECT_TRUE(sleeper.query("SELECT 1")) << sleeper.error();
}

TEST_F(OpsCliMariadb, refusal_1040_says_use_the_extra_slot_and_admin_still_gets_in) {
    std::vector<MyConn> hogs;
    for (int i = 0; i < 25; ++i) {
        MyConn c("app", "apppass", my_->port());
        if (!c.ok()) break;
        hogs.push_back(std::move(c));
    }
    auto refused = poolguard({"diagnose", my_->dsn("app", "apppass")});
    EXPECT_EQ(refused.exit_code, 2);
    EXPECT_NE(refused.output.find("1040"), std::string::npos) << refused.output;
    EXPECT_NE(refused.output.find("extra_port"), std::string::npos) << refused.output;
    auto admin = poolguard({"diagnose", my_->dsn("admin", "adminpass"), "--json"});
    ASSERT_EQ(admin.exit_code, 0) << admin.output;  // SUPER gets max_connections + 1
    EXPECT_EQ(parse_json(admin)["verdict"], "critical");

    auto auth = poolguard({"diagnose", my_->dsn("app", "nope")});
    EXPECT_EQ(auth.exit_code, 2);
}

TEST(OpsCliLogscan, stdin_and_files_give_the_same_counts) {
    const std::string file = std::string(POOLGUARD_SOURCE_DIR) + "/tests/data/logs/pgbouncer.log";
    auto from_file = poolguard({"logscan", "--json", file});
    ASSERT_EQ(from_file.exit_code, 0) << from_file.output;
    auto j = parse_json(from_file);
    ASSERT_EQ(j["categories"].size(), 1u);
    EXPECT_EQ(j["categories"][0]["category"], "pooler_refusal");
    EXPECT_EQ(j["categories"][0]["count"], 4);
    SpawnOptions o;
    o.argv = {"/bin/sh", "-c", std::string("cat '") + file + "' | '" + POOLGUARD_BINARY + "' logscan"};
    auto piped = run_command(o, 10s);
    EXPECT_EQ(piped.exit_code, 0);
    EXPECT_NE(piped.output.find("pooler_refusal  x4"), std::string::npos) << piped.output;
    auto missing = poolguard({"logscan", "/nonexistent/log"});
    EXPECT_EQ(missing.exit_code, 2);
}

}  // namespace
}  // namespace itest
