// Unit tests of the circuit breaker state machine with injected time (no I/O, no clock).
#include <gtest/gtest.h>

#include "pool/circuit_breaker.h"

namespace poolguard::pool {
namespace {

using namespace std::chrono_literals;
using TP = CircuitBreaker::TimePoint;

struct BreakerTest : ::testing::Test {
    CircuitBreaker b;
    TP t0 = TP{} + 1000s;
    void SetUp() override {
        BreakerSettings s;
        s.wait_bound = 10s;
        s.open_time = 5s;
        s.login_failures = 3;
        b.configure(s);
    }
};

TEST_F(BreakerTest, TooManyConnectionsOpensAtOnce) {
    EXPECT_EQ(b.advance(t0), BreakerState::kClosed);
    b.on_login_failed(t0, true, "sorry, too many clients already");
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    EXPECT_FALSE(b.allows_wait(t0 + 1s));
    EXPECT_NE(b.reason().find("53300"), std::string::npos);
    EXPECT_EQ(b.opens(), 1u);
    EXPECT_FALSE(b.opened_by_login_failures());
}

TEST_F(BreakerTest, OtherLoginFailuresOpenAfterThreshold) {
    b.on_login_failed(t0, false, "password authentication failed");
    b.on_login_failed(t0 + 1s, false, "password authentication failed");
    EXPECT_EQ(b.state(), BreakerState::kClosed);
    b.on_login_ok(t0 + 2s);  // a success resets the count
    b.on_login_failed(t0 + 3s, false, "x");
    b.on_login_failed(t0 + 4s, false, "x");
    EXPECT_EQ(b.state(), BreakerState::kClosed);
    b.on_login_failed(t0 + 5s, false, "x");
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    EXPECT_NE(b.reason().find("3 consecutive"), std::string::npos);
    EXPECT_TRUE(b.opened_by_login_failures());
}

TEST_F(BreakerTest, HalfOpenAfterOpenTimeThenProbeCloses) {
    b.on_login_failed(t0, true, "full");
    EXPECT_EQ(b.advance(t0 + 4900ms), BreakerState::kOpen);
    EXPECT_FALSE(b.probe_due(t0 + 4900ms));
    EXPECT_TRUE(b.probe_due(t0 + 5s));
    EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
    EXPECT_TRUE(b.allows_wait(t0 + 5s));
    b.probe_started();
    EXPECT_FALSE(b.probe_due(t0 + 6s));  // one probe at a time
    b.on_login_ok(t0 + 6s);
    EXPECT_EQ(b.state(), BreakerState::kClosed);
}

TEST_F(BreakerTest, FailedProbeReopens) {
    b.on_login_failed(t0, true, "full");
    EXPECT_TRUE(b.probe_due(t0 + 5s));
    b.probe_started();
    b.on_login_failed(t0 + 5100ms, true, "still full");
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    EXPECT_EQ(b.opens(), 2u);
    EXPECT_NE(b.reason().find("probe"), std::string::npos);
    EXPECT_FALSE(b.allows_wait(t0 + 10s));
    EXPECT_TRUE(b.allows_wait(t0 + 10100ms));  // half-open again after another open_time
}

TEST_F(BreakerTest, LongWaitOpensAndShortServedWaitClosesHalfOpen) {
    b.on_wait(t0, 9s);
    EXPECT_EQ(b.state(), BreakerState::kClosed);
    b.on_wait(t0, 10s);
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    EXPECT_NE(b.reason().find("waited"), std::string::npos);
    b.on_served(t0 + 1s, 1s);  // open: being served does not close it
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    EXPECT_EQ(b.advance(t0 + 5s), BreakerState::kHalfOpen);
    b.on_served(t0 + 6s, 12s);  // served, but after too long a wait: stays half-open
    EXPECT_EQ(b.state(), BreakerState::kHalfOpen);
    b.on_served(t0 + 6s, 100ms);
    EXPECT_EQ(b.state(), BreakerState::kClosed);
}

TEST_F(BreakerTest, DisabledNeverOpensAndDisablingCloses) {
    b.on_login_failed(t0, true, "full");
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    BreakerSettings off;
    off.enabled = false;
    b.configure(off);
    EXPECT_EQ(b.state(), BreakerState::kClosed);
    b.on_login_failed(t0, true, "full");
    b.on_wait(t0, 100s);
    EXPECT_EQ(b.state(), BreakerState::kClosed);
    EXPECT_TRUE(b.allows_wait(t0));
}

TEST_F(BreakerTest, ZeroWaitBoundIgnoresWaits) {
    BreakerSettings s;
    s.wait_bound = 0s;
    b.configure(s);
    b.on_wait(t0, 1000s);
    EXPECT_EQ(b.state(), BreakerState::kClosed);
}

TEST_F(BreakerTest, GenerationCountsTransitions) {
    const auto g = b.generation();
    b.on_login_failed(t0, true, "full");
    b.advance(t0 + 5s);
    b.on_login_ok(t0 + 6s);
    EXPECT_EQ(b.generation(), g + 3);
    EXPECT_STREQ(to_string(BreakerState::kHalfOpen), "half-open");
}

}  // namespace
}  // namespace poolguard::pool
