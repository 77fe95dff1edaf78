// Tests the responders' configuration keys (defaults, validation, SET at run time) and the journal line a
// decision produces (evidence and attribution).
#include <gtest/gtest.h>

#include "config/config.h"
#include "respond/runner.h"

namespace poolguard::respond {
namespace {

constexpr const char* kBase = "[pgbouncer]\nauth_file = /etc/pgbouncer/userlist.txt\n[poolguard]\n";

TEST(RespondConfig, DefaultsAreDryRunWithTheIssueLimits) {
    auto r = config::parse_config(kBase, "pg.ini");
    ASSERT_TRUE(r) << r.error().message;
    const auto& c = r->config;
    EXPECT_EQ(c.respond, "dry-run");
    EXPECT_TRUE(c.respond_terminate_idle.empty());
    EXPECT_EQ(c.kill_idle_after.count(), 300'000'000);
    EXPECT_EQ(c.cancel_long_after.count(), 120'000'000);
    EXPECT_EQ(c.max_actions_per_minute, 10);
}

TEST(RespondConfig, ParsesAndRefusesBadValues) {
    auto r = config::parse_config(std::string(kBase) +
                                      "respond = off\nrespond_end_leaks = on\nkill_leak_after = 30s\n"
                                      "protect_users = batch_*, etl\nprotect_applications = pg_dump\n",
                                  "pg.ini");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->config.respond_end_leaks, "on");
    EXPECT_EQ(r->config.kill_leak_after.count(), 30'000'000);
    EXPECT_EQ(r->config.protect_users, (std::vector<std::string>{"batch_*", "etl"}));
    auto bad = config::parse_config(std::string(kBase) + "respond_cancel_long = sometimes\n", "pg.ini");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("pg.ini:4: invalid value 'sometimes' for respond_cancel_long"),
              std::string::npos)
        << bad.error().message;
    auto zero = config::parse_config(std::string(kBase) + "kill_idle_after = 0\n", "pg.ini");
    EXPECT_FALSE(zero);
}

TEST(RespondConfig, ModesChangeAtRunTimeLimitsDoNot) {
    auto r = config::parse_config(kBase, "pg.ini");
    ASSERT_TRUE(r);
    auto c = r->config;
    EXPECT_TRUE(config::set_parameter(c, "respond_terminate_idle", "on"));
    EXPECT_EQ(c.respond_terminate_idle, "on");
    auto refused = config::set_parameter(c, "kill_idle_after", "10");
    ASSERT_FALSE(refused);
    EXPECT_EQ(refused.error().sqlstate, "55P02");
}

TEST(RespondJournal, DecisionEntryCarriesEvidenceAndAttribution) {
    Decision d;
    d.responder = ResponderKind::end_leaks;
    d.mode = Mode::dry_run;
    d.type = ActionType::end_client;
    d.pid = 4242;
    d.client_id = 7;
    d.database = "db";
    d.user = "app";
    d.application = "leaky-worker";
    d.query = "select now()";
    d.reason = "idle in transaction for 6m12s (limit 5m00s)";
    d.age_s = 372;
    d.limit_s = 300;
    auto j = decision_entry(d, "dry-run", "", std::chrono::system_clock::now());
    EXPECT_EQ(j["kind"], "respond_end_leaks");
    EXPECT_EQ(j["severity"], "dry-run");
    EXPECT_EQ(j["action"], "end_client");
    EXPECT_EQ(j["pid"], 4242);
    EXPECT_EQ(j["evidence"]["age_s"], 372.0);
    EXPECT_EQ(j["evidence"]["limit_s"], 300.0);
    EXPECT_EQ(j["attribution"]["application"][0], "leaky-worker");
    EXPECT_EQ(j["attribution"]["query"][0], "select now()");
    EXPECT_EQ(j["summary"].get<std::string>().rfind("would end poolguard client 7 holding pid 4242", 0), 0u)
        << j["summary"];
}

}  // namespace
}  // namespace poolguard::respond
