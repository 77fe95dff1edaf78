// Tests the diagnose assessment: counts, thresholds, verdicts, next command and the JSON keys.
#include "ops/diagnosis.h"

#include <gtest/gtest.h>

namespace poolguard::ops {
namespace {

using dbview::Session;
using dbview::SessionState;
using dbview::Snapshot;

Session make(int64_t id, SessionState state, double age, std::string app = "web") {
    Session s;
    s.id = id;
    s.state = state;
    s.state_text = dbview::to_string(state);
    s.user = "app";
    s.application = std::move(app);
    s.state_age_s = age;
    if (state == SessionState::active) s.query_age_s = age;
    return s;
}

Snapshot snapshot(int max, int reserved) {
    Snapshot s;
    s.max_connections = max;
    s.reserved_connections = reserved;
    s.server_version = "15.5";
    return s;
}

TEST(Diagnosis, HealthyWhenQuiet) {
    auto snap = snapshot(100, 3);
    for (int i = 0; i < 10; ++i)
        snap.sessions.push_back(make(i, SessionState::idle, 10));
    auto d = diagnose(snap, "postgres://u:***@h/db");
    EXPECT_EQ(d.verdict, Verdict::healthy);
    EXPECT_EQ(d.usable, 97);
    EXPECT_EQ(d.used, 10);
    EXPECT_EQ(d.next_command, "poolguard watch 'postgres://u:***@h/db'");  // * quoted for the shell
}

TEST(Diagnosis, CriticalOverReserveAndLists) {
    auto snap = snapshot(100, 10);
    for (int i = 0; i < 85; ++i)
        snap.sessions.push_back(make(i, SessionState::active, 1));
    for (int i = 85; i < 92; ++i)
        snap.sessions.push_back(make(i, SessionState::idle, 600, "worker"));
    snap.sessions.push_back(make(92, SessionState::idle_in_transaction, 90, "leaky"));
    snap.sessions.push_back(make(93, SessionState::active, 200, "report"));
    Session sys = make(94, SessionState::other, 1e5, "");
    sys.system = true;
    snap.sessions.push_back(sys);
    Session own = make(95, SessionState::active, 500, "poolguard-dbview");
    own.own = true;
    snap.sessions.push_back(own);
    auto d = diagnose(snap, "postgres://x");
    EXPECT_EQ(d.verdict, Verdict::critical);
    EXPECT_EQ(d.used, 95);
    EXPECT_EQ(d.usable, 90);
    ASSERT_EQ(d.long_running.size(), 1u);  // own connection never listed
    EXPECT_EQ(d.long_running[0].id, 93);
    EXPECT_EQ(d.idle.size(), 7u);
    ASSERT_EQ(d.idle_in_transaction.size(), 1u);
    EXPECT_EQ(d.idle_in_transaction[0].application, "leaky");
    EXPECT_EQ(d.top_applications[0].first, "web");
    EXPECT_EQ(d.top_applications[0].second, 85);
    EXPECT_NE(d.reasons[0].find("95/90"), std::string::npos) << d.reasons[0];
    EXPECT_NE(d.next_command.find("poolguard recover"), std::string::npos);
    auto j = to_json(d);
    for (const char* key : {"engine", "max_connections", "reserved_connections", "by_state", "utilization",
                            "long_running", "idle", "idle_in_transaction", "top_applications", "verdict"})
        EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["verdict"], "critical");
    EXPECT_EQ(j["by_state"]["idle"], 7);
    EXPECT_EQ(j["by_state"]["active"], 87);
    const std::string text = render_text(d);
    EXPECT_NE(text.find("VERDICT: CRITICAL"), std::string::npos);
    EXPECT_NE(text.find("NEXT:"), std::string::npos);
}

TEST(Diagnosis, WarningForLeakAloneAndThresholdEdges) {
    auto snap = snapshot(100, 0);
    snap.sessions.push_back(make(1, SessionState::idle_in_transaction, 61));
    snap.sessions.push_back(make(2, SessionState::idle_in_transaction, 60));
    snap.sessions.push_back(make(3, SessionState::idle, 300));
    snap.sessions.push_back(make(4, SessionState::active, 120));
    auto d = diagnose(snap, "x");
    EXPECT_EQ(d.verdict, Verdict::warning);
    EXPECT_EQ(d.idle_in_transaction.size(), 1u);
    EXPECT_TRUE(d.idle.empty());
    EXPECT_TRUE(d.long_running.empty());
}

TEST(Diagnosis, TrendAddsPattern) {
    auto snap = snapshot(10, 0);
    auto d = diagnose(snap, "x");
    TrendReport t;
    t.pattern = Pattern::gradual;
    t.explanation = "gradual: +2.0 connections/min";
    auto j = to_json(d, t);
    EXPECT_EQ(j["pattern"], "gradual");
    EXPECT_NE(render_text(d, t).find("Trend:   gradual"), std::string::npos);
}

TEST(Diagnosis, Bar) {
    EXPECT_EQ(utilization_bar(0.5, 10), "[#####-----] 50%");
    EXPECT_EQ(utilization_bar(1.2, 4), "[####]! 120%");
}

TEST(Diagnosis, ShellQuote) {
    EXPECT_EQ(shell_quote("postgres://u@h:5/db"), "postgres://u@h:5/db");
    EXPECT_EQ(shell_quote("postgres://u:***@h/db?a=b&c=d"), "'postgres://u:***@h/db?a=b&c=d'");
    EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
}

}  // namespace
}  // namespace poolguard::ops
