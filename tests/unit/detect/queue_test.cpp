// Unit tests of the pool-queue rule (detect/queue.h): when waits raise it, how severe, who is named.
#include <gtest/gtest.h>

#include "detect/queue.h"

namespace poolguard::detect {
namespace {

QueueSample queue(double t, int waiting, double longest, std::vector<QueueSample::Class> classes = {}) {
    QueueSample s;
    s.t = t;
    s.waiting = waiting;
    s.longest_s = longest;
    s.classes = std::move(classes);
    return s;
}

TEST(QueueDetector, QuietWhileWaitsAreShorterThanTheThreshold) {
    QueueDetector d("app", {1.0, 120});
    EXPECT_EQ(d.update(queue(0, 0, 0)).severity, Severity::ok);
    EXPECT_EQ(d.update(queue(1, 40, 0.9)).severity, Severity::ok);  // many, but each served quickly
    EXPECT_EQ(d.state(), Severity::ok);
}

TEST(QueueDetector, RaisesOnALongWaitNamesTheWaitingClassesAndClears) {
    QueueDetector d("app", {1.0, 120});
    const auto f = d.update(queue(1, 20, 1.4, {{"web", 0, 0}, {"batch", 16, 1.4}, {"worker", 4, 0.3}}));
    EXPECT_EQ(f.kind, "queue");
    EXPECT_EQ(f.database, "app");
    EXPECT_EQ(f.severity, Severity::warning);
    EXPECT_NE(f.summary.find("20 client(s) waiting"), std::string::npos) << f.summary;
    ASSERT_EQ(f.attribution.size(), 2u);  // web has nobody waiting: not named
    EXPECT_EQ(f.attribution[0].first, "class");
    EXPECT_EQ(f.attribution[0].second, "batch (16 waiting, longest 1.4 s)");
    EXPECT_EQ(f.attribution[1].second, "worker (4 waiting, longest 0.3 s)");
    EXPECT_EQ(d.update(queue(2, 3, 0.2)).severity, Severity::ok);
    EXPECT_EQ(d.state(), Severity::ok);
}

TEST(QueueDetector, CriticalAtHalfTheQueryWaitTimeout) {
    QueueDetector d("app", {1.0, 10});
    EXPECT_EQ(d.update(queue(1, 5, 4.9)).severity, Severity::warning);
    const auto f = d.update(queue(2, 5, 5.0));
    EXPECT_EQ(f.severity, Severity::critical);
    EXPECT_NE(f.summary.find("query_wait_timeout 10 s"), std::string::npos) << f.summary;
}

TEST(QueueDetector, WithoutQueryWaitTimeoutCriticalAtTenTimesTheThreshold) {
    QueueDetector d("app", {0.5, 0});
    EXPECT_EQ(d.update(queue(1, 1, 4.9)).severity, Severity::warning);
    EXPECT_EQ(d.update(queue(2, 1, 5.0)).severity, Severity::critical);
}

}  // namespace
}  // namespace poolguard::detect
