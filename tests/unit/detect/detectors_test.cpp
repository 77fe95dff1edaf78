// Unit tests of the detectors' rules on synthetic series, including the runbook's three pattern tables
// (gradual exhaustion, sudden spike, connection leak) replayed as series.
#include <gtest/gtest.h>

#include "detect/errors.h"
#include "detect/exhaustion.h"
#include "detect/leak.h"
#include "detect/spike.h"
#include "detect/utilization.h"

namespace poolguard::detect {
namespace {

DbSample db(double t, int used, int usable, std::map<std::string, int> apps = {}) {
    DbSample s;
    s.t = t;
    s.used = used;
    s.usable = usable;
    s.groups.by_application = std::move(apps);
    return s;
}

double evidence(const Finding& f, const std::string& name) {
    for (const auto& [k, v] : f.evidence)
        if (k == name) return v;
    return -1;
}

bool attributed(const Finding& f, const std::string& dim, const std::string& prefix) {
    for (const auto& [k, v] : f.attribution)
        if (k == dim && v.starts_with(prefix)) return true;
    return false;
}

// ---- utilization ----

TEST(UtilizationDetector, RaisesOnlyAfterMinDurationAndClearsWithHysteresis) {
    UtilizationDetector d("db", {0.8, 0.9, 10});
    EXPECT_EQ(d.update(db(0, 50, 100)).severity, Severity::ok);
    EXPECT_EQ(d.update(db(5, 85, 100)).severity, Severity::ok);  // 80 % just reached
    EXPECT_EQ(d.update(db(10, 86, 100)).severity, Severity::ok);
    EXPECT_EQ(d.update(db(15, 86, 100)).severity, Severity::warning);  // held 10 s
    EXPECT_EQ(d.update(db(20, 95, 100)).severity, Severity::warning);
    EXPECT_EQ(d.update(db(30, 95, 100)).severity, Severity::critical);
    // One dip does not resolve it; staying below for 10 s does, one level at a time.
    EXPECT_EQ(d.update(db(35, 70, 100)).severity, Severity::critical);
    EXPECT_EQ(d.update(db(40, 96, 100)).severity, Severity::critical);
    EXPECT_EQ(d.update(db(45, 70, 100)).severity, Severity::critical);
    EXPECT_EQ(d.update(db(55, 70, 100)).severity, Severity::ok);
}

TEST(UtilizationDetector, RunbookPrimaryIsCriticalAndOvercommitted) {
    // "Used: 95/90, Overcommitted: 5" (max_connections 100, 10 reserved).
    UtilizationDetector d("primary", {0.8, 0.9, 0});
    auto f = d.update(db(0, 95, 90, {{"api", 60}, {"batch", 35}}));
    EXPECT_EQ(f.severity, Severity::critical);
    EXPECT_NE(f.summary.find("95/90"), std::string::npos);
    EXPECT_NE(f.summary.find("overcommitted 5"), std::string::npos);
    EXPECT_TRUE(attributed(f, "application", "api (60)"));
}

// ---- gradual exhaustion: the runbook's first table ----
// Time 10:00 40/100, 10:15 60, 10:30 80, 10:45 95, 11:00 100.

TEST(ExhaustionDetector, RunbookGradualTableForecastsBeforeExhaustion) {
    ExhaustionDetector d("db", {3600, 1800});  // fit over an hour, horizon 30 min
    const int used[] = {40, 60, 80, 95, 100};
    std::vector<Finding> f;
    // Between the table's rows the climb is steady: sample every 5 minutes.
    for (int i = 0; i <= 12; ++i) {
        const int row = i / 3, step = i % 3;
        const double u = row < 4 ? used[row] + (used[row + 1] - used[row]) * step / 3.0 : 100;
        f.push_back(d.update(db(i * 300.0, static_cast<int>(u), 100)));
    }
    EXPECT_EQ(f[2].severity, Severity::ok);  // 10:10: only 10 min of history, under a quarter of the window
    EXPECT_EQ(f[3].severity,
              Severity::ok);  // 10:15: three steps of 6-7, none under a third of the rise of 20
    // 10:20 (i = 4): 66/100 at +1.33/min: exhausted in ~25 min, under the 30-min horizon.
    EXPECT_EQ(f[4].severity, Severity::warning);
    EXPECT_NEAR(evidence(f[4], "eta_minutes"), 25, 2);
    // 10:30 (i = 6): 80/100: exhausted in 15 min.
    EXPECT_EQ(f[6].severity, Severity::warning);
    EXPECT_NEAR(evidence(f[6], "eta_minutes"), 15, 2);
    EXPECT_NE(f[6].summary.find("exhausted in"), std::string::npos);
    // 10:45 (i = 9): 95/100, a few minutes left: critical.
    EXPECT_EQ(f[9].severity, Severity::critical);
    EXPECT_LT(evidence(f[9], "eta_minutes"), 10);
}

TEST(ExhaustionDetector, QuietOnFlatAndFallingAndOnAJump) {
    ExhaustionDetector flat("db", {600, 1800});
    for (int i = 0; i < 20; ++i)
        EXPECT_EQ(flat.update(db(i * 30.0, 50 + (i % 2), 100)).severity, Severity::ok);
    ExhaustionDetector jump("db", {600, 1800});  // the spike table: 45 -> 95 in one step
    Finding last;
    for (int i = 0; i < 10; ++i)
        last = jump.update(db(i * 60.0, i < 5 ? 45 : 95, 100));
    EXPECT_EQ(last.severity, Severity::ok) << last.summary;
    ExhaustionDetector split("db", {10, 60});  // a jump caught half-way by one sample, plus noise
    const int used[] = {5, 5, 6, 5, 15, 25, 26, 25, 26, 25, 26};
    for (int i = 0; i < 11; ++i)
        EXPECT_EQ(split.update(db(i, used[i], 37)).severity, Severity::ok) << i;
}

TEST(FitTrend, ExactLine) {
    std::deque<std::pair<double, double>> pts{{0, 1}, {1, 3}, {2, 5}};
    auto t = fit_trend(pts);
    ASSERT_TRUE(t);
    EXPECT_DOUBLE_EQ(t->slope_per_s, 2);
    EXPECT_DOUBLE_EQ(t->fitted_now, 5);
    EXPECT_DOUBLE_EQ(t->r2, 1);
}

// ---- sudden spike: the runbook's second table ----
// 10:00 45/100 normal, 10:01 95/100 batch job started, 10:02 100/100, 10:03 100/100.

TEST(SpikeDetector, RunbookSpikeTableNamesTheBatchJob) {
    SpikeDetector d("db", {60, 0});
    EXPECT_EQ(d.update(db(0, 45, 100, {{"web", 45}})).severity, Severity::ok);
    auto f = d.update(db(60, 95, 100, {{"web", 45}, {"batch", 50}}));
    EXPECT_EQ(f.severity, Severity::critical);  // 5 slots left: fewer than 10 % free
    EXPECT_EQ(evidence(f, "rise"), 50);
    EXPECT_TRUE(attributed(f, "application", "batch (+50)"));
    EXPECT_FALSE(attributed(f, "application", "web"));
    // 10:02: the rise within the last minute is only 5, but the spike stays reported for a window.
    EXPECT_EQ(d.update(db(120, 100, 100, {{"web", 45}, {"batch", 50}, {"mobile", 5}})).severity,
              Severity::critical);
    EXPECT_EQ(d.update(db(181, 100, 100)).severity, Severity::ok);
}

TEST(SpikeDetector, StaysRaisedForOneWindowThenClears) {
    SpikeDetector d("db", {60, 10});
    d.update(db(0, 5, 100));
    EXPECT_EQ(d.update(db(1, 40, 100)).severity, Severity::warning);
    EXPECT_EQ(d.update(db(2, 5, 100)).severity, Severity::warning);  // burst over, still reported
    EXPECT_EQ(d.update(db(30, 5, 100)).severity, Severity::warning);
    EXPECT_EQ(d.update(db(62, 5, 100)).severity, Severity::ok);
    // The spike rule is not fooled by a drop: 40 -> 5 is no rise.
}

TEST(SpikeDetector, QuietOnTheGradualClimb) {
    SpikeDetector d("db", {60, 0});  // 40 -> 100 over an hour, sampled each minute
    for (int i = 0; i <= 60; ++i)
        EXPECT_EQ(d.update(db(i * 60.0, 40 + i, 100)).severity, Severity::ok);
}

TEST(SpikeDetector, DefaultThresholdIsTenPercentOfUsableAtLeastFive) {
    SpikeDetector small("db", {60, 0});
    small.update(db(0, 0, 37));
    EXPECT_EQ(small.update(db(1, 4, 37)).severity, Severity::ok);
    EXPECT_NE(small.update(db(2, 5, 37)).severity, Severity::ok);
}

// ---- connection leak: the runbook's third table ----
// Hour 09:00 expected 40 actual 40, 10:00 45/50, 11:00 50/65, 12:00 55/85, 13:00 60/100.

TEST(LeakDetector, RunbookLeakTableByLittlesLaw) {
    LeakDetector d("db", {3 * 3600, 5, 0});
    const int expected[] = {40, 45, 50, 55, 60};
    const int actual[] = {40, 50, 65, 85, 100};
    PoolerSample s;
    std::vector<Finding> f;
    for (int h = 0; h < 5; ++h) {
        // The traffic: mean hold 2 s, expected/2 transactions per second during the hour before.
        if (h > 0) {
            const uint64_t xacts = static_cast<uint64_t>(expected[h]) * 3600 / 2;
            s.xact_count += xacts;
            s.xact_time_us += xacts * 2'000'000;
        }
        s.t = h * 3600.0;
        s.held = actual[h];
        s.idle_in_transaction = {};
        s.idle_in_transaction.by_application = {{"worker-2", actual[h] - expected[h]}};
        f.push_back(d.update(s));
    }
    EXPECT_EQ(f[0].severity, Severity::ok);
    // 10:00: over 3 h the traffic explains ~45 and 50 are held: +5 = the threshold: a leak is suspected.
    EXPECT_EQ(f[1].severity, Severity::warning);
    EXPECT_GE(evidence(f[1], "excess"), 4);
    EXPECT_EQ(f[3].severity, Severity::critical);  // 12:00: 30 leaked
    EXPECT_TRUE(attributed(f[3], "application", "worker-2 (30)"));
}

TEST(LeakDetector, QuietWhenHeldMatchesTraffic) {
    LeakDetector d("db", {60, 3, 2});
    PoolerSample s;
    for (int i = 0; i < 30; ++i) {
        s.t = i;
        s.xact_count += 100;             // 100 xact/s
        s.xact_time_us += 100 * 50'000;  // 50 ms each: L = 5
        s.held = 5 + (i % 2);
        EXPECT_EQ(d.update(s).severity, Severity::ok) << i;
    }
}

TEST(ClientLeakDetector, ReportsWhoHowLongAndTheLastStatement) {
    ClientLeakDetector d(3);
    ClientHold busy{1, "db", "app", "web", "10.0.0.1", 5000, 11, false, 100, 100, "select 1"};
    ClientHold fresh{2, "db", "app", "worker", "10.0.0.2", 5001, 12, true, 2, 2, "begin"};
    ClientHold leak{3, "db", "app", "leaky-worker", "10.0.0.3", 5002, 13, true, 4.5, 5, "update t set x = 1"};
    auto out = d.update({busy, fresh, leak});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].kind, "client_leak");
    EXPECT_EQ(out[0].severity, Severity::warning);
    EXPECT_TRUE(attributed(out[0], "application", "leaky-worker"));
    EXPECT_TRUE(attributed(out[0], "address", "10.0.0.3:5002"));
    EXPECT_TRUE(attributed(out[0], "last_statement", "update t set x = 1"));
    leak.idle_s = 16;
    EXPECT_EQ(d.update({leak})[0].severity, Severity::critical);
    EXPECT_TRUE(ClientLeakDetector(0).update({leak}).empty());  // 0 = off
}

// ---- error patterns ----

TEST(ErrorDetector, CountsWhatHappenedBeforeTheFirstSample) {
    ErrorDetector d(1);
    EXPECT_EQ(d.update({5, 1, 0, 0}).severity, Severity::warning);  // totals since start: one 53300 already
}

TEST(ErrorDetector, CountsPerMinute) {
    ErrorDetector d(1);
    EXPECT_EQ(d.update({0, 0, 0, 0}).severity, Severity::ok);
    EXPECT_EQ(d.update({10, 0, 0, 5}).severity, Severity::ok);  // 5 login failures < 10
    auto f = d.update({20, 1, 0, 5});
    EXPECT_EQ(f.severity, Severity::warning);  // a server said 53300
    EXPECT_TRUE(attributed(f, "source", "database refuses"));
    EXPECT_EQ(d.update({30, 12, 0, 5}).severity, Severity::critical);
    EXPECT_EQ(d.update({100, 12, 0, 5}).severity, Severity::ok);       // a quiet minute
    EXPECT_EQ(d.update({110, 12, 3, 5}).severity, Severity::warning);  // poolguard refused clients
}

}  // namespace
}  // namespace poolguard::detect
