// Tests the recovery planner: each rule, the thresholds' edges, every protection, and precedence.
#include "dbview/recover_plan.h"

#include <gtest/gtest.h>

namespace poolguard::dbview {
namespace {

Session session(int64_t id, SessionState state, double age, std::string user = "app",
                std::string app = "web") {
    Session s;
    s.id = id;
    s.state = state;
    s.user = std::move(user);
    s.application = std::move(app);
    s.state_age_s = age;
    if (state == SessionState::active) s.query_age_s = age;
    return s;
}

RecoverPolicy runbook_policy() {
    RecoverPolicy p;
    p.kill_idle_after_s = 300;
    p.cancel_long_after_s = 120;
    p.kill_leak_after_s = 60;
    return p;
}

const RecoverAction* find(const RecoverPlan& plan, int64_t id) {
    for (const auto& a : plan.actions)
        if (a.session_id == id) return &a;
    return nullptr;
}

TEST(RecoverPlan, EmptyPolicyDoesNothing) {
    Snapshot snap;
    snap.sessions = {session(1, SessionState::idle, 1e6), session(2, SessionState::active, 1e6),
                     session(3, SessionState::idle_in_transaction, 1e6)};
    auto plan = plan_recovery(snap, RecoverPolicy{});
    EXPECT_TRUE(plan.actions.empty());
    EXPECT_TRUE(plan.spared.empty());
}

TEST(RecoverPlan, RunbookRules) {
    Snapshot snap;
    snap.sessions = {session(10, SessionState::idle, 301),
                     session(11, SessionState::idle, 299),
                     session(12, SessionState::active, 121),
                     session(13, SessionState::active, 119),
                     session(14, SessionState::idle_in_transaction, 61),
                     session(15, SessionState::idle_in_transaction, 59),
                     session(16, SessionState::idle_in_transaction_aborted, 600)};
    auto plan = plan_recovery(snap, runbook_policy());
    ASSERT_EQ(plan.actions.size(), 4u);
    EXPECT_EQ(find(plan, 10)->kind, ActionKind::terminate);
    EXPECT_EQ(find(plan, 12)->kind, ActionKind::cancel);
    EXPECT_EQ(find(plan, 14)->kind, ActionKind::terminate);
    EXPECT_EQ(find(plan, 16)->kind, ActionKind::terminate);
    EXPECT_EQ(find(plan, 11), nullptr);
    EXPECT_EQ(find(plan, 13), nullptr);
    EXPECT_EQ(find(plan, 15), nullptr);
    EXPECT_EQ(find(plan, 10)->reason, "idle for 5m01s (limit 5m00s)");
    EXPECT_EQ(find(plan, 12)->reason, "query running for 2m01s (limit 2m00s)");
    EXPECT_EQ(find(plan, 14)->reason, "idle in transaction for 1m01s (limit 1m00s)");
}

TEST(RecoverPlan, ExactlyAtLimitIsNotOver) {
    Snapshot snap;
    snap.sessions = {session(1, SessionState::idle, 300)};
    EXPECT_TRUE(plan_recovery(snap, runbook_policy()).actions.empty());
}

TEST(RecoverPlan, TerminateLongWinsOverCancel) {
    auto p = runbook_policy();
    p.terminate_long_after_s = 600;
    Snapshot snap;
    snap.sessions = {session(1, SessionState::active, 700), session(2, SessionState::active, 200)};
    auto plan = plan_recovery(snap, p);
    ASSERT_EQ(plan.actions.size(), 2u);
    EXPECT_EQ(find(plan, 1)->kind, ActionKind::terminate);
    EXPECT_EQ(find(plan, 2)->kind, ActionKind::cancel);
}

TEST(RecoverPlan, TerminateLongAloneWorks) {
    RecoverPolicy p;
    p.terminate_long_after_s = 10;
    Snapshot snap;
    snap.sessions = {session(1, SessionState::active, 11)};
    auto plan = plan_recovery(snap, p);
    ASSERT_EQ(plan.actions.size(), 1u);
    EXPECT_EQ(plan.actions[0].kind, ActionKind::terminate);
}

TEST(RecoverPlan, IdleRuleDoesNotTouchIdleInTransactionWithoutLeakRule) {
    RecoverPolicy p;
    p.kill_idle_after_s = 1;
    Snapshot snap;
    snap.sessions = {session(1, SessionState::idle_in_transaction, 1000), session(2, SessionState::idle, 2)};
    auto plan = plan_recovery(snap, p);
    ASSERT_EQ(plan.actions.size(), 1u);
    EXPECT_EQ(plan.actions[0].session_id, 2);
}

TEST(RecoverPlan, MissingAgesNeverMatch) {
    Snapshot snap;
    Session s = session(1, SessionState::idle, 0);
    s.state_age_s.reset();
    snap.sessions = {s};
    EXPECT_TRUE(plan_recovery(snap, runbook_policy()).actions.empty());
}

TEST(RecoverPlan, OtherStatesNeverMatch) {
    Snapshot snap;
    snap.sessions = {session(1, SessionState::other, 1e6), session(2, SessionState::disabled, 1e6)};
    EXPECT_TRUE(plan_recovery(snap, runbook_policy()).actions.empty());
}

TEST(RecoverPlan, ProtectionsAreRespectedAndReported) {
    auto p = runbook_policy();
    p.protect_users = {"batch*"};
    p.protect_apps = {"itx", "migr?te"};
    Snapshot snap;
    Session own = session(1, SessionState::active, 999);
    own.own = true;
    Session su = session(2, SessionState::idle, 999, "postgres");
    su.superuser = true;
    Session repl = session(3, SessionState::active, 999, "replicator");
    repl.replication = true;
    Session sys = session(4, SessionState::active, 999, "");
    sys.system = true;
    Session batch = session(5, SessionState::idle, 999, "batch_nightly");
    Session itx = session(6, SessionState::idle_in_transaction, 999, "app", "itx");
    Session migrate = session(7, SessionState::active, 999, "app", "migrate");
    Session victim = session(8, SessionState::idle, 999, "app", "itx-other");
    snap.sessions = {victim, own, su, repl, sys, batch, itx, migrate};
    auto plan = plan_recovery(snap, p);
    ASSERT_EQ(plan.actions.size(), 1u);
    EXPECT_EQ(plan.actions[0].session_id, 8);
    ASSERT_EQ(plan.spared.size(), 7u);
    EXPECT_EQ(plan.spared[0].protection, "own connection");
    EXPECT_EQ(plan.spared[1].protection, "superuser");
    EXPECT_EQ(plan.spared[2].protection, "replication");
    EXPECT_EQ(plan.spared[3].protection, "system session");
    EXPECT_EQ(plan.spared[4].protection, "protected user 'batch*'");
    EXPECT_EQ(plan.spared[5].protection, "protected application 'itx'");
    EXPECT_EQ(plan.spared[6].protection, "protected application 'migr?te'");
    EXPECT_EQ(plan.spared[5].would_have, "idle in transaction for 16m39s (limit 1m00s)");
}

TEST(RecoverPlan, SessionsThatMatchNoRuleAreNotListedAsSpared) {
    auto p = runbook_policy();
    p.protect_users = {"*"};
    Snapshot snap;
    snap.sessions = {session(1, SessionState::idle, 5)};
    auto plan = plan_recovery(snap, p);
    EXPECT_TRUE(plan.actions.empty());
    EXPECT_TRUE(plan.spared.empty());
}

TEST(RecoverPlan, ActionsAreOrderedById) {
    Snapshot snap;
    snap.sessions = {session(30, SessionState::idle, 999), session(10, SessionState::idle, 999),
                     session(20, SessionState::active, 999)};
    auto plan = plan_recovery(snap, runbook_policy());
    ASSERT_EQ(plan.actions.size(), 3u);
    EXPECT_EQ(plan.actions[0].session_id, 10);
    EXPECT_EQ(plan.actions[1].session_id, 20);
    EXPECT_EQ(plan.actions[2].session_id, 30);
}

TEST(RecoverPlan, ActionCarriesSessionDetails) {
    Snapshot snap;
    Session s = session(5, SessionState::active, 500, "app", "web");
    s.client_addr = "10.0.0.7";
    s.query = "select pg_sleep(600)";
    snap.sessions = {s};
    auto plan = plan_recovery(snap, runbook_policy());
    ASSERT_EQ(plan.actions.size(), 1u);
    EXPECT_EQ(plan.actions[0].user, "app");
    EXPECT_EQ(plan.actions[0].application, "web");
    EXPECT_EQ(plan.actions[0].client_addr, "10.0.0.7");
    EXPECT_EQ(plan.actions[0].query, "select pg_sleep(600)");
    EXPECT_EQ(to_string(plan.actions[0].kind), "cancel");
}

TEST(Glob, Matches) {
    EXPECT_TRUE(glob_match("batch*", "batch_nightly"));
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("a?c", "abc"));
    EXPECT_TRUE(glob_match("[ab]x", "bx"));
    EXPECT_FALSE(glob_match("batch*", "xbatch"));
    EXPECT_FALSE(glob_match("itx", "itx-other"));
}

}  // namespace
}  // namespace poolguard::dbview
