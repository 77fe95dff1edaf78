// Unit tests of the rate limiter of refused-connection log lines (issue 15): lines up to the per-second
// budget, then one summary per second naming the reasons.
#include <gtest/gtest.h>

#include "session/refusal_log.h"

namespace poolguard::session {
namespace {

using namespace std::chrono_literals;

TEST(RefusalLimiter, LogsUpToTheBudgetThenSummarisesOncePerSecond) {
    RefusalLimiter l;
    const auto t0 = std::chrono::steady_clock::time_point{} + 100s;
    int logged = 0;
    for (int i = 0; i < 2000; ++i)
        logged += l.admit(t0 + std::chrono::microseconds(i * 100), Rejection::kBadCancel) ? 1 : 0;
    EXPECT_EQ(logged, RefusalLimiter::kLinesPerSecond);
    EXPECT_TRUE(l.take_summary(t0 + 500ms).empty()) << "no summary before the second is over";
    const std::string summary = l.take_summary(t0 + 1s);
    EXPECT_NE(summary.find(std::to_string(2000 - RefusalLimiter::kLinesPerSecond)), std::string::npos)
        << summary;
    EXPECT_NE(summary.find("bad_cancel="), std::string::npos) << summary;
    EXPECT_TRUE(l.take_summary(t0 + 2s).empty()) << "the summary is given once";
    EXPECT_TRUE(l.admit(t0 + 2s, Rejection::kLoginTimeout)) << "a new second has a new budget";
}

TEST(RefusalLimiter, ReasonsHaveMetricNames) {
    EXPECT_STREQ(to_string(Rejection::kBadStartupPacket), "bad_startup_packet");
    EXPECT_STREQ(to_string(Rejection::kUnsupportedProtocol), "unsupported_protocol");
    EXPECT_STREQ(to_string(Rejection::kLoginTimeout), "login_timeout");
}

}  // namespace
}  // namespace poolguard::session
