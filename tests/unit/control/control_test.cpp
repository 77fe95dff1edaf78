// Unit tests of the control plane's sans-I/O parts: Prometheus exposition, Alertmanager payloads, journal
// lines and their rendering, control-connection targets, the [poolguard] options, and drill's summary.
#include <gtest/gtest.h>

#include "config/config.h"
#include "control/alerts.h"
#include "control/control_plane.h"
#include "control/journal.h"
#include "control/metrics.h"
#include "drill/drill.h"

namespace poolguard::control {
namespace {

ControlStatus sample_status() {
    ControlStatus st;
    st.proxy.valid = true;
    admin::PoolRow p;
    p.database = "app";
    p.user = "web";
    p.cl_active = 3;
    p.cl_waiting = 2;
    p.sv_active = 3;
    p.sv_idle = 1;
    p.maxwait_us = 1'500'000;
    st.proxy.pools.push_back(p);
    admin::StatsRow s;
    s.database = "app";
    s.xact_count = 42;
    st.proxy.stats.push_back(s);
    st.proxy.counters.refused_max_client_conn = 7;
    st.proxy.counters.wait_bucket[0] = 5;
    st.proxy.counters.wait_bucket.back() = 1;
    st.proxy.counters.wait_count = 6;
    dbview::Snapshot snap;
    snap.max_connections = 100;
    snap.reserved_connections = 10;
    for (int i = 0; i < 95; ++i) {
        dbview::Session x;
        x.state = i < 80 ? dbview::SessionState::active : dbview::SessionState::idle;
        snap.sessions.push_back(x);
    }
    st.databases.push_back(DatabaseView{"app", "db:5432/app", snap, "", 1});
    detect::Finding f;
    f.kind = "client_leak";
    f.subject = "client C-1";
    f.database = "app";
    f.severity = detect::Severity::warning;
    st.findings.push_back(f);
    return st;
}

TEST(Metrics, PgbouncerExporterNamesAndDatabaseView) {
    const std::string m = render_metrics(sample_status());
    EXPECT_NE(m.find("pgbouncer_pools_client_waiting_connections{database=\"app\",user=\"web\"} 2\n"),
              std::string::npos);
    EXPECT_NE(m.find("pgbouncer_pools_server_active_connections{database=\"app\",user=\"web\"} 3\n"),
              std::string::npos);
    EXPECT_NE(m.find("pgbouncer_pools_client_maxwait_seconds{database=\"app\",user=\"web\"} 1.5\n"),
              std::string::npos);
    EXPECT_NE(m.find("pgbouncer_stats_sql_transactions_pooled_total{database=\"app\"} 42\n"),
              std::string::npos);
    EXPECT_NE(m.find("poolguard_db_max_connections{database=\"app\"} 100\n"), std::string::npos);
    EXPECT_NE(m.find("poolguard_db_usable_connections{database=\"app\"} 90\n"), std::string::npos);
    EXPECT_NE(m.find("poolguard_db_connections{database=\"app\",state=\"active\"} 80\n"), std::string::npos);
    EXPECT_NE(m.find("poolguard_db_utilization_ratio{database=\"app\"} 1.0555"), std::string::npos);
    EXPECT_NE(m.find("poolguard_refusals_total{reason=\"max_client_conn\"} 7\n"), std::string::npos);
    EXPECT_NE(m.find("poolguard_client_wait_seconds_bucket{le=\"+Inf\"} 6\n"), std::string::npos);
    EXPECT_NE(m.find("poolguard_leak_suspects{database=\"app\"} 1\n"), std::string::npos);
    EXPECT_NE(m.find("poolguard_detector_state{detector=\"client_leak\",database=\"app\"} 1\n"),
              std::string::npos);
    EXPECT_EQ(escape_label("a\"b\\c\n"), "a\\\"b\\\\c\\n");
}

detect::Finding finding(detect::Severity sev) {
    detect::Finding f;
    f.kind = "utilization";
    f.subject = f.database = "app";
    f.severity = sev;
    f.summary = "95/90 usable connection slots used";
    f.attribution = {{"application", "batch (40)"}};
    return f;
}

TEST(AlertBook, FiringThenSeverityChangeThenResolved) {
    AlertBook book("host");
    const auto t0 = std::chrono::system_clock::now();
    book.update({finding(detect::Severity::warning)}, t0);
    EXPECT_TRUE(book.changed());
    auto p = book.payload(t0, std::chrono::seconds(120));
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0]["labels"]["alertname"], "PoolguardDbUtilization");
    EXPECT_EQ(p[0]["labels"]["severity"], "warning");
    EXPECT_EQ(p[0]["labels"]["database"], "app");
    EXPECT_EQ(p[0]["annotations"]["attribution"], "application: batch (40)");
    EXPECT_GT(p[0]["endsAt"].get<std::string>(), p[0]["startsAt"].get<std::string>());
    book.delivered(book.generation(), book.resolved_count());
    EXPECT_FALSE(book.changed());
    // Severity rises: the warning alert ends, a critical one starts.
    book.update({finding(detect::Severity::critical)}, t0 + std::chrono::seconds(5));
    p = book.payload(t0 + std::chrono::seconds(5), std::chrono::seconds(120));
    ASSERT_EQ(p.size(), 2u);
    book.delivered(book.generation(), book.resolved_count());
    // Cleared: one resolved alert with endsAt = now, then nothing.
    book.update({finding(detect::Severity::ok)}, t0 + std::chrono::seconds(9));
    p = book.payload(t0 + std::chrono::seconds(10), std::chrono::seconds(120));
    ASSERT_EQ(p.size(), 1u);
    EXPECT_EQ(p[0]["labels"]["severity"], "critical");
    EXPECT_EQ(p[0]["endsAt"], format_time(t0 + std::chrono::seconds(9)));
    book.delivered(book.generation(), book.resolved_count());
    EXPECT_TRUE(book.payload(t0, std::chrono::seconds(1)).empty());
}

TEST(Journal, EntryAndReadableLine) {
    auto f = finding(detect::Severity::critical);
    f.evidence = {{"used", 95}, {"usable", 90}};
    const auto entry = journal_entry(f, detect::Severity::warning, std::chrono::system_clock::time_point{});
    EXPECT_EQ(entry["time"], "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(entry["event"], "changed");
    EXPECT_EQ(entry["evidence"]["used"], 95);
    EXPECT_EQ(entry["attribution"]["application"][0], "batch (40)");
    const std::string line = format_journal_line(entry.dump());
    EXPECT_NE(line.find("CRITICAL"), std::string::npos);
    EXPECT_NE(line.find("utilization"), std::string::npos);
    EXPECT_NE(line.find("application: batch (40)"), std::string::npos);
    EXPECT_NE(line.find("used=95"), std::string::npos);
    EXPECT_EQ(format_journal_line("not json"), "not json");
}

TEST(SampleTargets, OnePerInstanceWithCredentials) {
    auto loaded = config::parse_config(
        "[databases]\n"
        "app = host=10.0.0.5 port=5433 dbname=appdb\n"
        "app_ro = host=10.0.0.5 port=5433 dbname=other\n"
        "forced = host=10.0.0.6 user=svc password=s3cret\n"
        "[pgbouncer]\nauth_type = trust\nadmin_users = ops\n",
        "t.ini");
    ASSERT_TRUE(loaded) << loaded.error().message;
    auto targets = sample_targets(loaded->config, [](const std::string& user) -> std::optional<std::string> {
        if (user == "ops") return "opspass";
        return std::nullopt;
    });
    ASSERT_EQ(targets.size(), 2u);
    EXPECT_EQ(targets[0].name, "app");
    EXPECT_NE(targets[0].conninfo.find("user='ops'"), std::string::npos);
    EXPECT_NE(targets[0].conninfo.find("password='opspass'"), std::string::npos);
    EXPECT_NE(targets[0].conninfo.find("dbname='appdb'"), std::string::npos);
    EXPECT_NE(targets[1].conninfo.find("user='svc'"), std::string::npos);
    EXPECT_NE(targets[1].conninfo.find("password='s3cret'"), std::string::npos);
}

TEST(ControlConfig, TypedOptionsAndRefusals) {
    auto ok = config::parse_config(
        "[pgbouncer]\nauth_type = trust\n[poolguard]\nhttp_listen = 127.0.0.1:9127\nsample_interval = 1\n"
        "leak_detection_threshold = 3\nutilization_warning = 70\nexhaustion_horizon = 10min\n"
        "alertmanager_url = http://127.0.0.1:9093\n",
        "t.ini");
    ASSERT_TRUE(ok) << ok.error().message;
    EXPECT_EQ(ok->config.sample_interval, std::chrono::seconds(1));
    EXPECT_EQ(ok->config.leak_detection_threshold, std::chrono::seconds(3));
    EXPECT_EQ(ok->config.utilization_warning, 70);
    EXPECT_EQ(ok->config.exhaustion_horizon, std::chrono::minutes(10));
    EXPECT_TRUE(ControlPlane::wanted(ok->config));

    auto bad = config::parse_config("[pgbouncer]\nauth_type = trust\n[poolguard]\nsample_interval = soon\n",
                                    "t.ini");
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message.find("t.ini:4: invalid value 'soon' for sample_interval"),
              std::string::npos)
        << bad.error().message;
    auto order = config::parse_config(
        "[pgbouncer]\nauth_type = trust\n[poolguard]\nutilization_warning = 95\nutilization_critical = 90\n",
        "t.ini");
    ASSERT_FALSE(order);
    EXPECT_NE(order.error().message.find("t.ini:4:"), std::string::npos) << order.error().message;
    EXPECT_NE(order.error().message.find("utilization_warning"), std::string::npos);
    auto url = config::parse_config(
        "[pgbouncer]\nauth_type = trust\n[poolguard]\nalertmanager_url = am:9093\n", "t.ini");
    ASSERT_FALSE(url);
    EXPECT_NE(url.error().message.find("alertmanager_url"), std::string::npos);
}

TEST(DrillSummary, PercentilesAndFailuresBySqlstate) {
    drill::Recorder r;
    for (int i = 1; i <= 100; ++i)
        r.ok("web", i);
    r.failed("batch", "53300");
    r.failed("batch", "53300");
    const auto roles = r.roles();
    EXPECT_EQ(drill::percentile(roles.at("web").latency_ms, 50), 50);
    EXPECT_EQ(drill::percentile(roles.at("web").latency_ms, 99), 99);
    const std::string s = drill::format_summary(roles);
    EXPECT_NE(s.find("batch: 0 ok, 2 failed (53300 x2)"), std::string::npos) << s;
    EXPECT_NE(s.find("web: 100 ok, 0 failed, latency p50 50.0 ms p95 95.0 ms p99 99.0 ms"), std::string::npos)
        << s;
}

}  // namespace
}  // namespace poolguard::control
