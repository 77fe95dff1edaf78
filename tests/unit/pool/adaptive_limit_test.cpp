// Unit tests of the adaptive pool limit (Gradient2) on synthetic latency series, and of the window
// collector that cuts a pool's totals into windows (no I/O, injected time).
#include <gtest/gtest.h>

#include <algorithm>

#include "pool/adaptive_limit.h"

namespace poolguard::pool {
namespace {

using namespace std::chrono_literals;
using TP = LatencyWindowCollector::TimePoint;

AdaptiveLimitSettings settings(int min_limit, int max_limit) {
    AdaptiveLimitSettings s;
    s.min_limit = min_limit;
    s.max_limit = max_limit;
    s.initial_limit = min_limit;
    return s;
}

// A database with `cores` CPUs: a query takes `base_us` until more than `cores` run at once, then the
// time grows with concurrency (they share the CPUs). `demand` clients always want a connection.
struct CpuBoundDb {
    double base_us = 1000;
    int cores = 4;
    int demand = 1000;
    LatencyWindow window(int limit) const {
        LatencyWindow w;
        w.inflight = std::min(limit, demand);
        w.samples = 100;
        w.mean_latency_us = base_us * std::max(1.0, static_cast<double>(w.inflight) / cores);
        return w;
    }
};

int run(AdaptiveLimit& a, const CpuBoundDb& db, int windows) {
    for (int i = 0; i < windows; ++i)
        a.on_window(db.window(a.limit()));
    return a.limit();
}

TEST(AdaptiveLimitTest, SteadyLatencyGrowsToMax) {
    AdaptiveLimit a(settings(1, 32));
    EXPECT_EQ(a.limit(), 1);
    LatencyWindow w{100, 800.0, 0, 0};
    int previous = a.limit();
    for (int i = 0; i < 400; ++i) {
        w.inflight = a.limit();  // every allowed connection is busy
        const int l = a.on_window(w);
        EXPECT_GE(l, previous) << "steady latency must never shrink the limit (window " << i << ")";
        previous = l;
    }
    EXPECT_EQ(a.limit(), 32);
    EXPECT_DOUBLE_EQ(a.gradient(), 1.0);
}

TEST(AdaptiveLimitTest, LatencyRisingWithConcurrencySettlesWellBelowMax) {
    AdaptiveLimit a(settings(1, 64));
    CpuBoundDb db;  // 4 cores: past 4 connections each one only adds latency
    run(a, db, 200);
    const int settled = a.limit();
    EXPECT_GE(settled, 4) << "at least the cores are kept busy";
    EXPECT_LE(settled, 12) << "far below max: more connections only queue in the database";
    // Settled: the next 50 windows stay near it (no runaway to max, no collapse to min).
    for (int i = 0; i < 50; ++i) {
        a.on_window(db.window(a.limit()));
        EXPECT_GE(a.limit(), 4);
        EXPECT_LE(a.limit(), 14);
    }
}

TEST(AdaptiveLimitTest, LatencyJumpShrinksTheLimit) {
    AdaptiveLimit a(settings(1, 40));
    LatencyWindow flat{100, 1000.0, 0, 0};
    for (int i = 0; i < 300 && a.limit() < 40; ++i) {
        flat.inflight = a.limit();
        a.on_window(flat);
    }
    ASSERT_EQ(a.limit(), 40);
    // The database slows down 4x at this concurrency: the limit must come down.
    LatencyWindow slow{100, 4000.0, 40, 0};
    for (int i = 0; i < 30; ++i) {
        slow.inflight = a.limit();
        a.on_window(slow);
    }
    EXPECT_LT(a.limit(), 20);
    EXPECT_GE(a.gradient(), 0.5) << "the gradient never cuts more than half per window";
}

TEST(AdaptiveLimitTest, ErrorsShrinkMultiplicatively) {
    auto s = settings(2, 20);
    s.initial_limit = 20;
    AdaptiveLimit a(s);
    ASSERT_EQ(a.limit(), 20);
    LatencyWindow failing{100, 1000.0, 20, 3};
    a.on_window(failing);
    EXPECT_EQ(a.limit(), 18);  // 20 * 0.9
    for (int i = 0; i < 100; ++i)
        a.on_window(failing);
    EXPECT_EQ(a.limit(), 2) << "errors drive it down to min_limit, not below";
    // A window with errors but no finished query (every login refused) shrinks too.
    a.set_bounds(2, 20);
    AdaptiveLimit b(s);
    b.on_window(LatencyWindow{0, 0, 0, 1});
    EXPECT_EQ(b.limit(), 18);
}

TEST(AdaptiveLimitTest, CapAtRefusalDropsAtOnceWithinBounds) {
    auto s = settings(2, 20);
    s.initial_limit = 15;
    AdaptiveLimit a(s);
    a.cap(9);
    EXPECT_EQ(a.limit(), 9);
    a.cap(12);  // a cap never raises it
    EXPECT_EQ(a.limit(), 9);
    a.cap(0);
    EXPECT_EQ(a.limit(), 2);
}

TEST(AdaptiveLimitTest, BoundedByMinAndMax) {
    auto s = settings(3, 8);
    AdaptiveLimit a(s);
    EXPECT_EQ(a.limit(), 3);
    LatencyWindow terrible{100, 1000.0, 3, 0};
    for (int i = 0; i < 20; ++i)
        a.on_window(terrible);
    for (int i = 0; i < 200; ++i) {
        terrible.mean_latency_us *= 1.5;  // ever worse: the gradient stays at its floor
        terrible.inflight = a.limit();
        a.on_window(terrible);
        EXPECT_GE(a.limit(), 3);
    }
    LatencyWindow great{100, 1.0, 8, 0};
    for (int i = 0; i < 500; ++i) {
        great.inflight = a.limit();
        a.on_window(great);
        EXPECT_LE(a.limit(), 8);
    }
    EXPECT_EQ(a.limit(), 8);
}

TEST(AdaptiveLimitTest, BudgetCapsAtOnceAndGrowthResumesWhenItRises) {
    auto s = settings(1, 30);
    s.initial_limit = 30;
    AdaptiveLimit a(s);
    ASSERT_EQ(a.limit(), 30);
    a.set_bounds(1, 6);  // the database view: only 6 slots left for poolguard
    EXPECT_EQ(a.limit(), 6);
    EXPECT_EQ(a.max_limit(), 6);
    LatencyWindow w{100, 500.0, 6, 0};
    for (int i = 0; i < 50; ++i)
        EXPECT_LE(a.on_window(w), 6);
    a.set_bounds(1, 30);
    for (int i = 0; i < 300; ++i) {
        w.inflight = a.limit();
        a.on_window(w);
    }
    EXPECT_EQ(a.limit(), 30);
    // A budget below min_limit cannot take the pool's last connection away.
    a.set_bounds(2, 0);
    EXPECT_EQ(a.limit(), 2);
}

TEST(AdaptiveLimitTest, AppLimitedWindowsDoNotMoveTheLimit) {
    auto s = settings(1, 50);
    s.initial_limit = 20;
    AdaptiveLimit a(s);
    // Only 3 connections in use (< 20 / 2): neither good nor bad latency says anything about 20.
    for (int i = 0; i < 50; ++i)
        a.on_window(LatencyWindow{100, i < 25 ? 100.0 : 100000.0, 3, 0});
    EXPECT_EQ(a.limit(), 20);
}

TEST(AdaptiveLimitTest, ReconfigureKeepsTheLearnedEstimate) {
    AdaptiveLimit a(settings(1, 30));
    LatencyWindow w{100, 500.0, 0, 0};
    for (int i = 0; i < 40; ++i) {
        w.inflight = a.limit();
        a.on_window(w);
    }
    const int learned = a.limit();
    ASSERT_GT(learned, 3);
    auto s = settings(1, 30);
    s.rtt_tolerance = 2.0;
    a.configure(s);
    EXPECT_EQ(a.limit(), learned);
}

TEST(AdaptiveLimitTest, MeaningfulChange) {
    EXPECT_FALSE(AdaptiveLimit::meaningful_change(10, 10, 1, 20));
    EXPECT_FALSE(AdaptiveLimit::meaningful_change(10, 11, 1, 20));  // one connection of jitter
    EXPECT_TRUE(AdaptiveLimit::meaningful_change(10, 12, 1, 20));
    EXPECT_FALSE(AdaptiveLimit::meaningful_change(30, 33, 1, 40));  // 10 %: not yet
    EXPECT_TRUE(AdaptiveLimit::meaningful_change(30, 36, 1, 40));
    EXPECT_TRUE(AdaptiveLimit::meaningful_change(19, 20, 1, 20));  // reached the budget
    EXPECT_TRUE(AdaptiveLimit::meaningful_change(2, 1, 1, 20));    // reached min
}

TEST(LatencyWindowCollectorTest, ClosesOnSamplesOrAge) {
    LatencyWindowCollector c;
    c.configure(250ms, 1s, 100);
    TP t0 = TP{} + 100s;
    EXPECT_FALSE(c.poll(t0, {1000, 50'000, 0}, 1));  // first poll starts the window
    // Enough samples but too young.
    EXPECT_FALSE(c.poll(t0 + 100ms, {1200, 70'000, 0}, 4));
    auto w = c.poll(t0 + 250ms, {1200, 70'000, 0}, 4);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->samples, 200u);
    EXPECT_DOUBLE_EQ(w->mean_latency_us, 100.0);
    EXPECT_EQ(w->inflight, 4);
    // Few samples: waits for max_window.
    EXPECT_FALSE(c.poll(t0 + 500ms, {1210, 71'000, 0}, 2));
    w = c.poll(t0 + 1250ms, {1210, 71'000, 1}, 2);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->samples, 10u);
    EXPECT_EQ(w->errors, 1u);
    EXPECT_DOUBLE_EQ(w->mean_latency_us, 100.0);
}

TEST(LatencyWindowCollectorTest, IdleWindowsRestartAndResetCountersStartOver) {
    LatencyWindowCollector c;
    c.configure(250ms, 1s, 100);
    TP t0 = TP{} + 100s;
    c.start(t0, {10, 100, 0});
    EXPECT_FALSE(c.poll(t0 + 2s, {10, 100, 0}, 0));    // nothing happened: no window
    EXPECT_FALSE(c.poll(t0 + 2500ms, {5, 50, 0}, 0));  // totals went backwards: restart
    auto w = c.poll(t0 + 3500ms, {6, 150, 0}, 1);
    ASSERT_TRUE(w);
    EXPECT_EQ(w->samples, 1u);
    EXPECT_DOUBLE_EQ(w->mean_latency_us, 100.0);
}

}  // namespace
}  // namespace poolguard::pool
