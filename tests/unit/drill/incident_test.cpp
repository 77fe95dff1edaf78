// Tests the incident table's arithmetic: success %, top failure reasons, failed requests counted at the
// request timeout in the percentiles.
#include <gtest/gtest.h>

#include "drill/incident.h"

namespace poolguard::drill {
namespace {

TEST(IncidentSummary, FailedRequestsCountAtTheTimeoutInThePercentiles) {
    RoleStats s;
    for (int i = 0; i < 980; ++i)
        s.latency_ms.push_back(2.0);
    s.ok = 980;
    s.failed["timeout"] = 15;
    s.failed["connect 53300 too many clients"] = 5;
    const auto row = summarize_role("web-a", s, 5000);
    EXPECT_EQ(row.ok, 980u);
    EXPECT_EQ(row.failed, 20u);
    EXPECT_DOUBLE_EQ(row.success_pct, 98.0);
    EXPECT_DOUBLE_EQ(row.p50_ms, 2.0);
    EXPECT_DOUBLE_EQ(row.p99_ms, 5000.0);  // 2 % failed: the 99th percentile is a failure
    EXPECT_EQ(row.reasons, "timeout x15, connect 53300 too many clients x5");
}

TEST(IncidentSummary, FailuresLeftOutOfPercentilesWhenAsked) {
    RoleStats s;
    s.latency_ms = {1000, 2000, 3000};
    s.ok = 3;
    s.failed["57P01 terminated"] = 1;
    const auto row = summarize_role("batch", s, 0, "1.0 tx/s");
    EXPECT_DOUBLE_EQ(row.p99_ms, 3000.0);
    EXPECT_DOUBLE_EQ(row.success_pct, 75.0);
    EXPECT_EQ(row.note, "1.0 tx/s");
}

TEST(IncidentSummary, AtMostThreeReasonsMostFrequentFirst) {
    RoleStats s;
    s.failed = {{"a", 1}, {"b", 5}, {"c", 3}, {"d", 2}};
    const auto row = summarize_role("web", s, 5000);
    EXPECT_EQ(row.reasons, "b x5, c x3, d x2, ...");
    EXPECT_DOUBLE_EQ(row.success_pct, 0.0);
}

TEST(IncidentSummary, EmptyRoleIsAllGood) {
    const auto row = summarize_role("web-d", RoleStats{}, 5000);
    EXPECT_DOUBLE_EQ(row.success_pct, 100.0);
    const auto table = format_incident_table("poolguard", {row});
    EXPECT_NE(table.find("| target | role |"), std::string::npos);
    EXPECT_NE(table.find("| poolguard | web-d | 0 | 0 | - | 100.00 | 0.0 | 0.0 |  |"), std::string::npos);
    EXPECT_EQ(format_incident_table("x", {row}, false).find("| target"), std::string::npos);
}

}  // namespace
}  // namespace poolguard::drill
