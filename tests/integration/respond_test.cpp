// Integration tests of issue 6 (responders and control) against a real PostgreSQL: each responder acts
// within its deadline on an unprotected session while superusers, protected applications and poolguard's
// own connections survive; dry-run journals and changes nothing; SET on the admin console and POST
// /api/v1/guard switch modes at run time; SHOW GUARD lists detectors and responders. Measured delays are
// printed ("[respond] ...") for the closing note. Limits are 2 s, sample_interval 0.2 s; every deadline
// below is the limit plus 3 s (a sample, an evaluation each second, the signal).
#include <httplib.h>
#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <thread>

#include "fixtures.h"
#include "subprocess.h"

namespace itest {
namespace {

using nlohmann::json;

const std::string kApiToken = "respond-test-token";

class RespondTest : public PoolerTest {
  protected:
    // Modes: e.g. {"respond = off", "respond_terminate_idle = on"}.
    PoolerConfig respond_config(const std::vector<std::string>& lines, bool api_token = true) {
        http_port_ = free_tcp_port();
        PoolerConfig c = base_config("transaction", 5);
        c.set("admin_users", kApp);
        c.raw_pgbouncer_lines = {"[poolguard]",
                                 "http_listen = 127.0.0.1:" + std::to_string(http_port_),
                                 "control_user = postgres",
                                 "sample_interval = 0.2",
                                 "kill_idle_after = 2",
                                 "cancel_long_after = 2",
                                 "cancel_grace_period = 2",
                                 "kill_leak_after = 2",
                                 "max_actions_per_minute = 100",
                                 "protect_applications = protected-*"};
        if (api_token) c.raw_pgbouncer_lines.push_back("http_api_token = " + kApiToken);
        for (const auto& l : lines)
            c.raw_pgbouncer_lines.push_back(l);
        return c;
    }
    void start(PoolerConfig c) {
        journal_dir_ = make_temp_dir("respond-journal");
        journal_ = journal_dir_ + "/journal.jsonl";
        c.raw_pgbouncer_lines.push_back("journal_file = " + journal_);
        pooler_ = std::make_unique<PoolguardProcess>(c);
        ASSERT_TRUE(pooler_->start());
        ASSERT_TRUE(eventually([&] { return port_accepts(http_port_); }, 5s));
    }
    void TearDown() override {
        pooler_.reset();
        if (!journal_dir_.empty()) remove_tree(journal_dir_);
    }
    std::vector<json> journal() const {
        std::vector<json> out;
        std::ifstream in(journal_);
        for (std::string line; std::getline(in, line);)
            if (auto j = json::parse(line, nullptr, false); !j.is_discarded()) out.push_back(j);
        return out;
    }
    // The first journal entry of responder `kind` with `severity` about `pid`.
    std::optional<json> entry(const std::string& kind, const std::string& severity, long long pid) const {
        for (const auto& j : journal())
            if (j.value("kind", "") == "respond_" + kind && j.value("severity", "") == severity &&
                j.value("pid", -1LL) == pid)
                return j;
        return std::nullopt;
    }
    PgConn direct(const std::string& user, const std::string& app) {
        const std::string pass = user == kApp ? kAppPass : "";
        return PgConn(pg().dsn(user, pass) + " application_name=" + app);
    }
    static long long pid_of(const PgConn& c) { return PQbackendPID(c.get()); }
    bool alive(long long pid) {
        return pg().query_int("SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid)) ==
               1;
    }
    long long own_control_connections() {
        return pg().query_int(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'poolguard-dbview'");
    }
    static double since(Clock::time_point t) {
        return std::chrono::duration<double>(Clock::now() - t).count();
    }
    std::string http(const std::string& method, const std::string& path, const std::string& body = "",
                     const std::string& token = kApiToken) {
        httplib::Client cli("127.0.0.1", http_port_);
        httplib::Headers headers;
        if (!token.empty()) headers.emplace("Authorization", "Bearer " + token);
        auto res = method == "GET" ? cli.Get(path.c_str())
                                   : cli.Post(path.c_str(), headers, body, "application/json");
        return res ? std::to_string(res->status) + " " + res->body : "no answer";
    }

    int http_port_ = 0;
    std::string journal_, journal_dir_;
    std::unique_ptr<PoolguardProcess> pooler_;
};

TEST_F(RespondTest, TerminateIdleEndsIdleBackendsButSparesProtectedOnes) {
    auto c = respond_config({"respond = off", "respond_terminate_idle = on"});
    c.set("min_pool_size", 1);
    start(c);
    // Two servers in poolguard's pool (two clients at once), then idle: one is beyond min_pool_size.
    auto results = run_concurrently({pooler_->dsn(kApp, kAppPass), pooler_->dsn(kApp, kAppPass)},
                                    "select pg_sleep(0.3)");
    for (const auto& r : results)
        ASSERT_TRUE(Ok(r));
    auto victim = direct(kApp, "victim");
    auto super = direct("postgres", "superuser-session");
    auto protected_app = direct(kApp, "protected-report");
    ASSERT_TRUE(victim.ok() && super.ok() && protected_app.ok()) << victim.connect_error();
    const long long victim_pid = pid_of(victim), super_pid = pid_of(super),
                    protected_pid = pid_of(protected_app);
    const auto t0 = Clock::now();
    ASSERT_TRUE(eventually([&] { return !alive(victim_pid); }, 5s + 2s)) << read_file(journal_);
    const double delay = since(t0) - 2.0;
    std::printf("[respond] terminate_idle: idle backend terminated %.2f s after it passed kill_idle_after\n",
                delay);
    EXPECT_FALSE(victim.exec("select 1").ok());
    EXPECT_TRUE(Ok(super.exec("select 1")));
    EXPECT_TRUE(Ok(protected_app.exec("select 1")));
    EXPECT_TRUE(alive(super_pid) && alive(protected_pid));
    EXPECT_GE(own_control_connections(), 1);
    // poolguard closed its own idle server beyond min_pool_size itself and kept the other.
    EXPECT_TRUE(eventually(
        [&] {
            for (const auto& j : journal())
                if (j.value("action", "") == "close_pool_server" && j.value("severity", "") == "acted")
                    return true;
            return false;
        },
        3s))
        << read_file(journal_);
    bool kept = false;
    for (const auto& j : journal())
        kept |= j.value("severity", "") == "spared" &&
                j.value("protection", "").find("min_pool_size") != std::string::npos;
    EXPECT_TRUE(kept) << read_file(journal_);
    EXPECT_TRUE(entry("terminate_idle", "spared", super_pid)) << read_file(journal_);
    EXPECT_TRUE(entry("terminate_idle", "spared", protected_pid));
    const auto acted = entry("terminate_idle", "acted", victim_pid);
    ASSERT_TRUE(acted);
    EXPECT_EQ((*acted)["attribution"]["application"][0], "victim");
    EXPECT_GT((*acted)["evidence"]["age_s"].get<double>(), 2.0);
    // The pool still works after losing a server.
    PgConn through(pooler_->dsn(kApp, kAppPass));
    EXPECT_TRUE(Ok(through.exec("select 1")));
    EXPECT_NE(http("GET", "/metrics")
                  .find("poolguard_responder_actions_total{responder=\"terminate_idle\",outcome=\"acted\"}"),
              std::string::npos);
}

TEST_F(RespondTest, CancelLongCancelsThenTerminatesAQueryThatIgnoresTheCancel) {
    start(respond_config({"respond = off", "respond_cancel_long = on"}));
    auto slow = direct(kApp, "slow-report");
    auto stubborn = direct(kApp, "stubborn");
    auto super = direct("postgres", "superuser-session");
    ASSERT_TRUE(slow.ok() && stubborn.ok() && super.ok());
    const long long stubborn_pid = pid_of(stubborn);
    const auto t0 = Clock::now();
    ASSERT_TRUE(slow.send("select pg_sleep(30)"));
    // Swallows every cancel: only a terminate ends it.
    ASSERT_TRUE(
        stubborn.send("DO $$ BEGIN LOOP BEGIN PERFORM pg_sleep(30); EXCEPTION WHEN query_canceled THEN NULL; "
                      "END; END LOOP; "
                      "END $$"));
    ASSERT_TRUE(super.send("select pg_sleep(6)"));
    auto r = slow.wait(2s + 5s);
    const double cancel_delay = since(t0) - 2.0;
    EXPECT_EQ(r.sqlstate, "57014") << r.describe() << read_file(journal_);
    std::printf("[respond] cancel_long: query cancelled %.2f s after it passed cancel_long_after\n",
                cancel_delay);
    EXPECT_TRUE(Ok(slow.exec("select 1")));  // cancelled, not terminated
    auto s = stubborn.wait(2s + 2s + 6s);
    const double terminate_delay = since(t0) - 4.0;
    EXPECT_FALSE(s.ok());
    EXPECT_FALSE(alive(stubborn_pid));
    std::printf("[respond] cancel_long: stubborn query terminated %.2f s after cancel_long_after + grace\n",
                terminate_delay);
    EXPECT_TRUE(entry("cancel_long", "acted", stubborn_pid)) << read_file(journal_);
    bool escalated = false;
    for (const auto& j : journal())
        escalated |= j.value("pid", -1LL) == stubborn_pid && j.value("action", "") == "terminate" &&
                     j.value("reason", "").find("still running") != std::string::npos;
    EXPECT_TRUE(escalated) << read_file(journal_);
    EXPECT_TRUE(Ok(super.wait(10s)));  // the superuser's long query ran to the end
    EXPECT_GE(own_control_connections(), 1);
}

TEST_F(RespondTest, EndLeaksTellsThePoolguardClientWhyAndTerminatesDirectLeaks) {
    start(respond_config({"respond = off", "respond_end_leaks = on"}));
    PgConn via(pooler_->dsn(kApp, kAppPass) + " application_name=leaky-worker");
    auto direct_leak = direct(kApp, "leaky-direct");
    auto protected_leak = direct(kApp, "protected-batch");
    ASSERT_TRUE(via.ok() && direct_leak.ok() && protected_leak.ok());
    for (auto* c : {&via, &direct_leak, &protected_leak}) {
        ASSERT_TRUE(Ok(c->exec("begin")));
        ASSERT_TRUE(Ok(c->exec("select 1")));
    }
    const long long direct_pid = pid_of(direct_leak), protected_pid = pid_of(protected_leak);
    const auto t0 = Clock::now();
    ASSERT_TRUE(eventually([&] { return !alive(direct_pid); }, 2s + 3s)) << read_file(journal_);
    std::printf("[respond] end_leaks: direct leak terminated %.2f s after it passed kill_leak_after\n",
                since(t0) - 2.0);
    ASSERT_TRUE(eventually(
        [&] {
            for (const auto& j : journal())
                if (j.value("action", "") == "end_client" && j.value("severity", "") == "acted") return true;
            return false;
        },
        3s))
        << read_file(journal_);
    std::printf("[respond] end_leaks: poolguard client ended %.2f s after it passed kill_leak_after\n",
                since(t0) - 2.0);
    auto r = via.exec("select 1");
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.describe().find("terminated by poolguard: idle in transaction for"), std::string::npos)
        << r.describe();
    EXPECT_TRUE(Ok(protected_leak.exec("commit")));
    EXPECT_TRUE(entry("end_leaks", "spared", protected_pid));
    // The server the leaked client held was rolled back and serves the next client.
    PgConn next(pooler_->dsn(kApp, kAppPass));
    EXPECT_TRUE(Ok(next.exec("select 1")));
}

TEST_F(RespondTest, DryRunOnlyJournalsUntilSwitchedOnThroughConsoleAndApi) {
    start(respond_config({"respond = dry-run"}));
    auto victim = direct(kApp, "victim");
    auto slow = direct(kApp, "slow");
    ASSERT_TRUE(victim.ok() && slow.ok());
    const long long victim_pid = pid_of(victim), slow_pid = pid_of(slow);
    ASSERT_TRUE(slow.send("select pg_sleep(60)"));
    ASSERT_TRUE(eventually([&] { return entry("terminate_idle", "dry-run", victim_pid).has_value(); }, 5s))
        << read_file(journal_);
    ASSERT_TRUE(eventually([&] { return entry("cancel_long", "dry-run", slow_pid).has_value(); }, 5s));
    std::this_thread::sleep_for(1s);
    EXPECT_TRUE(Ok(victim.exec("select 1")));  // dry-run changed nothing
    EXPECT_FALSE(slow.result_ready());         // the slow query still runs
    EXPECT_NE(entry("terminate_idle", "dry-run", victim_pid)->value("summary", "").find("would terminate"),
              std::string::npos);

    PgConn admin(pooler_->dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok());
    auto guard = admin.exec("SHOW GUARD");
    ASSERT_TRUE(Ok(guard));
    EXPECT_EQ(guard.columns, (std::vector<std::string>{"component", "name", "mode", "state", "detail"}));
    bool listed = false, detector = false;
    for (const auto& row : guard.rows) {
        listed |= row[0] == "responder" && row[1] == "terminate_idle" && row[2] == "dry-run";
        detector |= row[0] == "detector" && row[1].starts_with("utilization");
    }
    EXPECT_TRUE(listed);
    EXPECT_TRUE(detector);
    EXPECT_FALSE(admin.exec("SET respond_terminate_idle = sometimes").ok());
    ASSERT_TRUE(Ok(admin.exec("SET respond_terminate_idle = on")));
    auto t0 = Clock::now();
    // victim idled again since its select: > 2 s, then a sample and a pass.
    EXPECT_TRUE(eventually([&] { return !alive(victim_pid); }, 6s)) << read_file(journal_);
    std::printf("[respond] SET respond_terminate_idle = on: acted %.2f s later\n", since(t0));
    guard = admin.exec("SHOW GUARD");
    for (const auto& row : guard.rows)
        if (row[1] == "terminate_idle") {
            EXPECT_EQ(row[2], "on");
        }

    EXPECT_NE(http("GET", "/api/v1/guard").find("\"respond_cancel_long\": \"dry-run\""), std::string::npos);
    EXPECT_EQ(http("POST", "/api/v1/guard", R"({"respond_cancel_long": "bogus"})").substr(0, 3), "400");
    // Changes need the token: none or a wrong one is 401 and changes nothing.
    EXPECT_EQ(http("POST", "/api/v1/guard", R"({"respond_cancel_long": "on"})", "").substr(0, 3), "401");
    EXPECT_EQ(http("POST", "/api/v1/guard", R"({"respond_cancel_long": "on"})", kApiToken + "x").substr(0, 3),
              "401");
    EXPECT_NE(http("GET", "/api/v1/guard").find("\"respond_cancel_long\": \"dry-run\""), std::string::npos);
    for (const auto& row : admin.exec("SHOW CONFIG").rows)
        if (row[0] == "http_api_token") {
            EXPECT_EQ(row[1], "********") << "SHOW CONFIG must not show the token";
        }
    auto answer = http("POST", "/api/v1/guard", R"({"respond_cancel_long": "on"})");
    EXPECT_NE(answer.find("\"respond_cancel_long\": \"on\""), std::string::npos) << answer;
    auto r = slow.wait(5s);
    EXPECT_EQ(r.sqlstate, "57014") << r.describe();
    // The HTTP change went through the same SET: SHOW CONFIG agrees.
    EXPECT_TRUE(eventually(
        [&] {
            for (const auto& row : admin.exec("SHOW CONFIG").rows)
                if (row[0] == "respond_cancel_long") return row[1] == "on";
            return false;
        },
        2s));
}

// Without http_api_token the HTTP endpoint is read-only: a page in an operator's browser or anyone who can
// reach the port cannot switch a responder on.
TEST_F(RespondTest, HttpChangesAreRefusedWithoutAnApiToken) {
    start(respond_config({"respond = dry-run"}, /*api_token=*/false));
    const std::string answer = http("POST", "/api/v1/guard?respond_terminate_idle=on", "", "anything");
    EXPECT_EQ(answer.substr(0, 3), "403") << answer;
    EXPECT_NE(answer.find("http_api_token"), std::string::npos) << answer;
    EXPECT_NE(http("GET", "/api/v1/guard").find("\"respond_terminate_idle\": \"dry-run\""),
              std::string::npos);
    PgConn admin(pooler_->dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok());
    for (const auto& row : admin.exec("SHOW GUARD").rows)
        if (row[1] == "terminate_idle") {
            EXPECT_EQ(row[2], "dry-run");
        }
}

}  // namespace
}  // namespace itest
