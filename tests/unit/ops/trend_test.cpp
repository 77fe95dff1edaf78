// Tests the trend unit: slope, forecast and the gradual / spike / leak / steady rules.
#include "ops/trend.h"

#include <gtest/gtest.h>

namespace poolguard::ops {
namespace {

TEST(Trend, NeedsSamples) {
    Trend t;
    EXPECT_EQ(t.report().pattern, Pattern::unknown);
    t.add({0, 10, 100, 0});
    t.add({10, 10, 100, 0});
    EXPECT_EQ(t.report().pattern, Pattern::unknown);
}

TEST(Trend, Steady) {
    Trend t;
    for (int i = 0; i < 10; ++i)
        t.add({i * 10.0, 40 + (i % 2), 100, 0});
    auto r = t.report();
    EXPECT_EQ(r.pattern, Pattern::steady);
    EXPECT_FALSE(r.minutes_to_exhaustion && r.pattern != Pattern::steady);
}

TEST(Trend, GradualWithForecast) {
    Trend t;
    // +2 connections per minute, sampled every 30 s: 50, 51, ..., 59
    for (int i = 0; i < 10; ++i)
        t.add({i * 30.0, 50 + i, 90, 0});
    auto r = t.report();
    EXPECT_EQ(r.pattern, Pattern::gradual);
    EXPECT_NEAR(r.slope_per_min, 2.0, 1e-9);
    ASSERT_TRUE(r.minutes_to_exhaustion);
    EXPECT_NEAR(*r.minutes_to_exhaustion, (90 - 59) / 2.0, 1e-9);
    EXPECT_NE(r.explanation.find("full in ~16 min"), std::string::npos) << r.explanation;
}

TEST(Trend, Spike) {
    Trend t;
    for (int i = 0; i < 6; ++i)
        t.add({i * 10.0, 20, 100, 0});
    t.add({60, 45, 100, 0});
    auto r = t.report();
    EXPECT_EQ(r.pattern, Pattern::spike);
    EXPECT_DOUBLE_EQ(r.rise_last_minute, 25);
}

TEST(Trend, LeakWhenIdleInTransactionKeepsGrowing) {
    Trend t;
    for (int i = 0; i < 8; ++i)
        t.add({i * 20.0, 30, 100, i});
    auto r = t.report();
    EXPECT_EQ(r.pattern, Pattern::leak);
    EXPECT_GT(r.itx_slope_per_min, 0);
}

TEST(Trend, ExhaustedHasNoForecast) {
    Trend t;
    for (int i = 0; i < 5; ++i)
        t.add({i * 10.0, 88 + i, 90, 0});
    EXPECT_FALSE(t.report().minutes_to_exhaustion);
}

TEST(Trend, WindowDropsOldSamples) {
    Trend t(60);
    for (int i = 0; i < 20; ++i)
        t.add({i * 10.0, 10, 100, 0});
    EXPECT_EQ(t.size(), 7u);  // t = 130 .. 190
}

}  // namespace
}  // namespace poolguard::ops
