// Tests the responders' sans-I/O decisions: once per episode, dry-run → on, protections, rate limit, the
// cancel → terminate grace escalation, poolguard's own idle servers first (beyond min_pool_size), leaks
// through poolguard ending the client; and the guard registry's SET / rows / hook.
#include "respond/responder.h"

#include <gtest/gtest.h>

#include "respond/guard.h"

namespace poolguard::respond {
namespace {

using dbview::Session;
using dbview::SessionState;
using dbview::Snapshot;

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

Snapshot snap(std::vector<Session> sessions) {
    Snapshot s;
    s.max_connections = 100;
    s.sessions = std::move(sessions);
    return s;
}

ResponderSettings settings() {
    ResponderSettings s;
    s.kill_idle_after_s = 300;
    s.cancel_long_after_s = 120;
    s.cancel_grace_s = 10;
    s.kill_leak_after_s = 60;
    s.max_actions_per_minute = 100;
    return s;
}

Modes all(Mode m) {
    return Modes{m, m, m};
}

TEST(RespondEngine, DryRunDecidesOncePerEpisodeThenActsWhenSwitchedOn) {
    ResponderEngine e(settings());
    auto d = e.decide(snap({session(7, SessionState::idle, 400)}), {}, all(Mode::dry_run), 1000);
    ASSERT_EQ(d.actions.size(), 1u);
    EXPECT_EQ(d.actions[0].type, ActionType::terminate_backend);
    EXPECT_EQ(d.actions[0].mode, Mode::dry_run);
    EXPECT_NE(d.actions[0].reason.find("idle for"), std::string::npos);
    EXPECT_DOUBLE_EQ(d.actions[0].age_s, 400);
    // Same idle period one second later: already reported.
    d = e.decide(snap({session(7, SessionState::idle, 401)}), {}, all(Mode::dry_run), 1001);
    EXPECT_TRUE(d.actions.empty());
    // Switched on: the same session is now acted on.
    d = e.decide(snap({session(7, SessionState::idle, 402)}), {}, all(Mode::on), 1002);
    ASSERT_EQ(d.actions.size(), 1u);
    EXPECT_EQ(d.actions[0].mode, Mode::on);
    // A new idle period of the same pid (it ran a query in between) is a new episode.
    d = e.decide(snap({session(7, SessionState::idle, 10)}), {}, all(Mode::on), 1100);
    EXPECT_TRUE(d.actions.empty());
    d = e.decide(snap({session(7, SessionState::idle, 301)}), {}, all(Mode::on), 1391);
    EXPECT_EQ(d.actions.size(), 1u);
}

TEST(RespondEngine, OffDoesNothing) {
    ResponderEngine e(settings());
    auto d = e.decide(snap({session(1, SessionState::idle, 1e6), session(2, SessionState::active, 1e6),
                            session(3, SessionState::idle_in_transaction, 1e6)}),
                      {}, all(Mode::off), 0);
    EXPECT_TRUE(d.actions.empty());
    EXPECT_TRUE(d.spared.empty());
}

TEST(RespondEngine, ProtectionsSpareAndAreReportedOnce) {
    auto s = settings();
    s.protect_users = {"batch*"};
    s.protect_applications = {"pg_dump"};
    ResponderEngine e(s);
    std::vector<Session> sessions;
    auto super = session(1, SessionState::idle, 1000, "postgres");
    super.superuser = true;
    auto repl = session(2, SessionState::idle, 1000, "repl");
    repl.replication = true;
    auto own = session(3, SessionState::idle, 1000);
    own.own = true;
    sessions = {super,
                repl,
                own,
                session(4, SessionState::idle, 1000, "batch_nightly"),
                session(5, SessionState::idle, 1000, "app", "pg_dump"),
                session(6, SessionState::idle, 1000, "app", "poolguard-dbview"),
                session(7, SessionState::idle, 1000)};
    auto d = e.decide(snap(sessions), {}, all(Mode::on), 0);
    ASSERT_EQ(d.actions.size(), 1u);
    EXPECT_EQ(d.actions[0].pid, 7);
    ASSERT_EQ(d.spared.size(), 6u);
    EXPECT_EQ(d.spared[0].protection, "superuser");
    EXPECT_EQ(d.spared[1].protection, "replication");
    EXPECT_EQ(d.spared[2].protection, "own connection");
    EXPECT_EQ(d.spared[3].protection, "protected user 'batch*'");
    EXPECT_EQ(d.spared[4].protection, "protected application 'pg_dump'");
    EXPECT_EQ(d.spared[5].protection, "protected application 'poolguard-*'");
    for (auto& x : sessions)
        x.state_age_s = *x.state_age_s + 1;
    d = e.decide(snap(sessions), {}, all(Mode::on), 1);
    EXPECT_TRUE(d.spared.empty());
}

TEST(RespondEngine, RateLimitHoldsBackAndRetriesAfterTheMinute) {
    auto s = settings();
    s.max_actions_per_minute = 2;
    ResponderEngine e(s);
    std::vector<Session> sessions;
    for (int i = 1; i <= 5; ++i)
        sessions.push_back(session(i, SessionState::idle, 400));
    auto d = e.decide(snap(sessions), {}, all(Mode::on), 0);
    EXPECT_EQ(d.actions.size(), 2u);
    EXPECT_EQ(d.rate_limited.size(), 3u);
    for (auto& x : sessions)
        x.state_age_s = 420;
    d = e.decide(snap(sessions), {}, all(Mode::on), 20);
    EXPECT_TRUE(d.actions.empty());
    EXPECT_EQ(d.rate_limited.size(), 3u);  // 1 and 2 were acted on 20 s ago: not retried yet
    for (auto& x : sessions)
        x.state_age_s = 461;
    d = e.decide(snap(sessions), {}, all(Mode::on), 61);
    ASSERT_EQ(d.actions.size(), 2u);
    EXPECT_EQ(d.actions[0].pid, 1);  // retried: the terminate 61 s ago did not take effect
}

TEST(RespondEngine, CancelEscalatesToTerminateAfterGrace) {
    ResponderEngine e(settings());
    auto d = e.decide(snap({session(9, SessionState::active, 130)}), {}, all(Mode::on), 0);
    ASSERT_EQ(d.actions.size(), 1u);
    EXPECT_EQ(d.actions[0].type, ActionType::cancel_backend);
    d = e.decide(snap({session(9, SessionState::active, 135)}), {}, all(Mode::on), 5);
    EXPECT_TRUE(d.actions.empty());
    d = e.decide(snap({session(9, SessionState::active, 140)}), {}, all(Mode::on), 10);
    ASSERT_EQ(d.actions.size(), 1u);
    EXPECT_EQ(d.actions[0].type, ActionType::terminate_backend);
    EXPECT_NE(d.actions[0].reason.find("still running"), std::string::npos);
    d = e.decide(snap({session(9, SessionState::active, 141)}), {}, all(Mode::on), 11);
    EXPECT_TRUE(d.actions.empty());
    // A new long query on the same backend is cancelled first again.
    d = e.decide(snap({session(9, SessionState::active, 125)}), {}, all(Mode::on), 200);
    ASSERT_EQ(d.actions.size(), 1u);
    EXPECT_EQ(d.actions[0].type, ActionType::cancel_backend);
}

TEST(RespondEngine, PoolguardIdleServersGoFirstAndKeepMinPoolSize) {
    ResponderEngine e(settings());
    std::vector<PooledServer> servers;
    for (int pid : {10, 11, 12})
        servers.push_back(PooledServer{pid, "db", "app", true, 3, 1, 0});
    auto d = e.decide(snap({session(5, SessionState::idle, 400), session(10, SessionState::idle, 400),
                            session(11, SessionState::idle, 400), session(12, SessionState::idle, 400)}),
                      servers, all(Mode::on), 0);
    ASSERT_EQ(d.actions.size(), 3u);
    EXPECT_EQ(d.actions[0].type, ActionType::close_pool_server);
    EXPECT_EQ(d.actions[0].database, "db");
    EXPECT_EQ(d.actions[1].type, ActionType::close_pool_server);
    EXPECT_EQ(d.actions[2].type, ActionType::terminate_backend);
    EXPECT_EQ(d.actions[2].pid, 5);
    ASSERT_EQ(d.spared.size(), 1u);
    EXPECT_EQ(d.spared[0].pid, 12);
    EXPECT_NE(d.spared[0].protection.find("min_pool_size"), std::string::npos);
}

TEST(RespondEngine, LeakThroughPoolguardEndsItsClientWithAReason) {
    ResponderEngine e(settings());
    std::vector<PooledServer> servers = {PooledServer{20, "db", "app", false, 2, 0, 42}};
    auto d = e.decide(snap({session(20, SessionState::idle_in_transaction, 75),
                            session(21, SessionState::idle_in_transaction, 75)}),
                      servers, all(Mode::on), 0);
    ASSERT_EQ(d.actions.size(), 2u);
    EXPECT_EQ(d.actions[0].type, ActionType::end_client);
    EXPECT_EQ(d.actions[0].client_id, 42u);
    EXPECT_EQ(d.actions[0].client_message,
              "terminated by poolguard: idle in transaction for 75 s (kill_leak_after)");
    EXPECT_EQ(d.actions[1].type, ActionType::terminate_backend);
    // A pid reused by another user's backend is not taken for poolguard's.
    ResponderEngine e2(settings());
    auto d2 = e2.decide(snap({session(20, SessionState::idle_in_transaction, 75, "other")}), servers,
                        all(Mode::on), 0);
    ASSERT_EQ(d2.actions.size(), 1u);
    EXPECT_EQ(d2.actions[0].type, ActionType::terminate_backend);
}

TEST(RespondEngine, ModesArePerResponder) {
    ResponderEngine e(settings());
    Modes m{Mode::off, Mode::on, Mode::dry_run};
    auto d = e.decide(snap({session(1, SessionState::idle, 1e4), session(2, SessionState::active, 200),
                            session(3, SessionState::idle_in_transaction, 100)}),
                      {}, m, 0);
    ASSERT_EQ(d.actions.size(), 2u);
    EXPECT_EQ(d.actions[0].responder, ResponderKind::cancel_long);
    EXPECT_EQ(d.actions[0].mode, Mode::on);
    EXPECT_EQ(d.actions[1].responder, ResponderKind::end_leaks);
    EXPECT_EQ(d.actions[1].mode, Mode::dry_run);
}

TEST(GuardRegistry, SetChangesModesAndRejectsBadValues) {
    GuardRegistry g;
    EXPECT_EQ(g.mode(ResponderKind::terminate_idle), Mode::dry_run);
    ASSERT_TRUE(g.set("respond_terminate_idle", "on"));
    EXPECT_EQ(g.mode(ResponderKind::terminate_idle), Mode::on);
    EXPECT_EQ(g.mode(ResponderKind::cancel_long), Mode::dry_run);
    ASSERT_TRUE(g.set("RESPOND", "'off'"));
    for (auto k : kAllResponders)
        EXPECT_EQ(g.mode(k), Mode::off);
    auto bad = g.set("respond_end_leaks", "maybe");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().sqlstate, "22023");
    EXPECT_FALSE(GuardRegistry::is_guard_key("respond_everything"));
    EXPECT_EQ(parse_mode("dry_run"), Mode::dry_run);
}

TEST(GuardRegistry, RowsListDetectorsRespondersAndRegisteredComponents) {
    GuardRegistry g;
    g.set_detector_rows({GuardRow{"detector", "utilization db", "", "warning", "85 %"}});
    g.register_rows("breaker", [] { return std::vector<GuardRow>{{"breaker", "db", "", "closed", ""}}; });
    g.note_last(ResponderKind::cancel_long, "cancel query of pid 5");
    auto rows = g.rows();
    ASSERT_EQ(rows.size(), 5u);
    EXPECT_EQ(rows[0].component, "detector");
    EXPECT_EQ(rows[1].name, "terminate_idle");
    EXPECT_EQ(rows[1].mode, "dry-run");
    EXPECT_NE(rows[2].detail.find("pid 5"), std::string::npos);
    EXPECT_EQ(rows[4].component, "breaker");
    g.unregister_rows("breaker");
    EXPECT_EQ(g.rows().size(), 4u);
}

}  // namespace
}  // namespace poolguard::respond
