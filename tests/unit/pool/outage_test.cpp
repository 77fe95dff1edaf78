// Unit tests of the outage vocabulary (issue 15): which server login failures mean "restarting, wait" and
// the breaker's restarting state (it neither opens for them nor for the waits they cause).
#include <gtest/gtest.h>

#include "pool/circuit_breaker.h"
#include "pool/outage.h"

namespace poolguard::pool {
namespace {

using namespace std::chrono_literals;
using TP = CircuitBreaker::TimePoint;

TEST(Outage, RestartErrorsAreOutages) {
    EXPECT_TRUE(is_outage_error(Error::make("the database system is starting up", "57P03")));
    EXPECT_TRUE(is_outage_error(Error::make("the database system is shutting down", "57P03")));
    EXPECT_TRUE(is_outage_error(Error::make("terminating connection due to administrator command", "57P01")));
    EXPECT_TRUE(is_outage_error(
        Error::make("could not connect to server 127.0.0.1:5432: Connection refused", "08006")));
    EXPECT_TRUE(is_outage_error(
        Error::make("server closed the connection during login: Connection reset by peer", "08006")));
}

TEST(Outage, RefusalsThatWaitingWillNotFixAreNot) {
    EXPECT_FALSE(is_outage_error(Error::make("password authentication failed for user \"app\"", "28P01")));
    EXPECT_FALSE(is_outage_error(Error::make("database \"nope\" does not exist", "3D000")));
    EXPECT_FALSE(is_outage_error(Error::make("sorry, too many clients already", "53300")));
    EXPECT_FALSE(is_outage_error(Error::make("server login timed out (server_connect_timeout)", "08006")));
    EXPECT_FALSE(is_outage_error(Error::make("could not resolve host \"x\": not found", "08006")));
}

TEST(Outage, RetryDelayIsShortAndBounded) {
    EXPECT_EQ(outage_retry_delay(1), 25ms);
    EXPECT_EQ(outage_retry_delay(2), 50ms);
    EXPECT_EQ(outage_retry_delay(4), 200ms);
    EXPECT_EQ(outage_retry_delay(1000), 200ms);
}

struct RestartingBreaker : ::testing::Test {
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

TEST_F(RestartingBreaker, OutagesNeverOpenItAndWaitsDuringThemDoNotEither) {
    for (int i = 0; i < 20; ++i)
        b.on_outage(t0 + i * 100ms, "the database system is starting up");
    EXPECT_TRUE(b.restarting());
    EXPECT_EQ(b.state(), BreakerState::kClosed);
    b.on_wait(t0 + 30s, 30s);  // a client waited through the whole outage
    EXPECT_EQ(b.state(), BreakerState::kClosed);
    EXPECT_TRUE(b.allows_wait(t0 + 30s));
    EXPECT_EQ(b.outages(), 1u);
}

TEST_F(RestartingBreaker, ALoginEndsTheOutageAndRecordsItsDuration) {
    b.on_outage(t0, "could not connect to server: Connection refused");
    b.on_outage(t0 + 1s, "the database system is starting up");
    b.on_login_ok(t0 + 1500ms);
    EXPECT_FALSE(b.restarting());
    EXPECT_NE(b.last_outage().find("1.5 s"), std::string::npos) << b.last_outage();
    // The queue the outage built is served: long waits right after it do not open the breaker...
    b.on_wait(t0 + 2s, 12s);
    EXPECT_EQ(b.state(), BreakerState::kClosed);
    // ... but a long wait well after it still does (exhaustion).
    b.on_wait(t0 + 30s, 11s);
    EXPECT_EQ(b.state(), BreakerState::kOpen);
}

TEST_F(RestartingBreaker, HardFailuresStillOpenIt) {
    for (int i = 0; i < 3; ++i)
        b.on_login_failed(t0 + i * 1s, false, "password authentication failed");
    EXPECT_EQ(b.state(), BreakerState::kOpen);
    EXPECT_FALSE(b.restarting());
}

}  // namespace
}  // namespace poolguard::pool
