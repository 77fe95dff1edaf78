// Unit tests of the drill's sans-I/O parts: the per-request record, the per-second timeline, time to recover
// and the JSON report the demo turns into its tables.
#include "drill/drill.h"

#include <gtest/gtest.h>

namespace poolguard::drill {
namespace {

Request ok_at(double start_s, double latency_ms) {
    return Request{start_s, latency_ms, true, ""};
}
Request failed_at(double start_s, const std::string& code = "53300") {
    return Request{start_s, 1, false, code};
}

// A timeline from (ok, failed, p99) per second.
std::vector<Bucket> seconds(const std::vector<std::tuple<uint64_t, uint64_t, double>>& spec) {
    std::vector<Bucket> out;
    for (size_t i = 0; i < spec.size(); ++i)
        out.push_back(
            Bucket{static_cast<double>(i), std::get<0>(spec[i]), std::get<1>(spec[i]), std::get<2>(spec[i])});
    return out;
}

TEST(DrillRecorder, KeepsEveryRequestWithItsStartTime) {
    Recorder r;
    r.record("web", ok_at(1.5, 20));
    r.record("web", failed_at(2.25, "08006"));
    r.ok("batch", 0);
    r.failed("batch", "53300", 0);
    const auto roles = r.roles();
    const auto& web = roles.at("web");
    EXPECT_EQ(web.ok, 1u);
    EXPECT_EQ(web.failed.at("08006"), 1u);
    ASSERT_EQ(web.requests.size(), 2u);
    EXPECT_DOUBLE_EQ(web.requests[0].start_s, 1.5);
    EXPECT_DOUBLE_EQ(web.requests[0].latency_ms, 20);
    EXPECT_FALSE(web.requests[1].ok);
    EXPECT_EQ(web.requests[1].sqlstate, "08006");
    EXPECT_EQ(web.latency_ms, std::vector<double>{20});  // failures have no latency sample
    // ok()/failed() stamp "now": the run started moments ago.
    const auto& batch = roles.at("batch");
    ASSERT_EQ(batch.requests.size(), 2u);
    EXPECT_GE(batch.requests[0].start_s, 0);
    EXPECT_LT(batch.requests[0].start_s, 5);
    EXPECT_LE(batch.requests[0].start_s, r.now_s());
}

TEST(DrillTimeline, BucketsByStartTimeWithP99PerSecond) {
    RoleStats web;
    for (int i = 1; i <= 100; ++i)
        web.requests.push_back(ok_at(0.5, i));  // second 0: latencies 1..100 ms
    web.requests.push_back(ok_at(1.99, 400));   // second 1
    web.requests.push_back(failed_at(2.0));     // second 2
    web.requests.push_back(ok_at(7.5, 3));      // after the 4 s run: counted in the last second
    const auto t = timeline(web, 4);
    ASSERT_EQ(t.size(), 4u);
    EXPECT_EQ(t[0].ok, 100u);
    EXPECT_DOUBLE_EQ(t[0].p99_ms, 99);
    EXPECT_EQ(t[1].ok, 1u);
    EXPECT_DOUBLE_EQ(t[1].p99_ms, 400);
    EXPECT_EQ(t[2].ok, 0u);
    EXPECT_EQ(t[2].failed, 1u);
    EXPECT_DOUBLE_EQ(t[2].p99_ms, 0);
    EXPECT_DOUBLE_EQ(t[2].start_s, 2);
    EXPECT_EQ(t[3].ok, 1u);
    // Half-second buckets.
    EXPECT_EQ(timeline(web, 4, 0.5).size(), 8u);
    EXPECT_EQ(timeline(web, 4, 0.5)[1].ok, 100u);
}

TEST(DrillRecovery, NoBreachMeansNothingToRecoverFrom) {
    const auto r = recovery(seconds({{10, 0, 5}, {10, 0, 240}, {0, 0, 0}, {10, 0, 5}}), 250);
    EXPECT_FALSE(r.first_breach_s);
    EXPECT_FALSE(r.recovered_s);
    EXPECT_FALSE(r.time_to_recover_s());
    EXPECT_DOUBLE_EQ(r.breach_s, 0);
}

TEST(DrillRecovery, RecoversAtTheStartOfTheFirstCalmStretch) {
    // Breaches at 2 (failure), 3 (latency) and 5 (failure); 4 is healthy but 5 breaks its stretch; from 6 on
    // three calm seconds.
    const auto r = recovery(seconds({{10, 0, 5},
                                     {10, 0, 5},
                                     {9, 1, 5},
                                     {10, 0, 900},
                                     {10, 0, 5},
                                     {0, 3, 0},
                                     {10, 0, 5},
                                     {10, 0, 5},
                                     {10, 0, 5},
                                     {10, 0, 5}}),
                            250);
    ASSERT_TRUE(r.first_breach_s);
    EXPECT_DOUBLE_EQ(*r.first_breach_s, 2);
    ASSERT_TRUE(r.recovered_s);
    EXPECT_DOUBLE_EQ(*r.recovered_s, 6);
    EXPECT_DOUBLE_EQ(*r.time_to_recover_s(), 4);
    EXPECT_DOUBLE_EQ(r.breach_s, 3);
}

TEST(DrillRecovery, ALaterBlipDoesNotUndoTheRecovery) {
    const auto r =
        recovery(seconds({{0, 4, 0}, {10, 0, 5}, {10, 0, 5}, {10, 0, 5}, {10, 0, 900}, {10, 0, 5}}), 250);
    ASSERT_TRUE(r.recovered_s);
    EXPECT_DOUBLE_EQ(*r.recovered_s, 1);
    EXPECT_DOUBLE_EQ(*r.time_to_recover_s(), 1);
    EXPECT_DOUBLE_EQ(r.breach_s, 2);
}

TEST(DrillRecovery, EmptySecondsAfterABreachAreNoEvidenceOfRecovery) {
    const auto r = recovery(
        seconds({{10, 0, 5}, {0, 2, 0}, {0, 0, 0}, {0, 0, 0}, {10, 0, 5}, {10, 0, 5}, {10, 0, 5}}), 250);
    ASSERT_TRUE(r.recovered_s);
    EXPECT_DOUBLE_EQ(*r.recovered_s, 4);
    EXPECT_DOUBLE_EQ(*r.time_to_recover_s(), 3);
}

TEST(DrillRecovery, StillFailingOrTooShortACalmAtTheEndIsNotRecovered) {
    const auto failing = recovery(seconds({{10, 0, 5}, {0, 5, 0}, {0, 5, 0}, {0, 5, 0}}), 250);
    ASSERT_TRUE(failing.first_breach_s);
    EXPECT_DOUBLE_EQ(*failing.first_breach_s, 1);
    EXPECT_FALSE(failing.recovered_s);
    EXPECT_FALSE(failing.time_to_recover_s());
    EXPECT_DOUBLE_EQ(failing.breach_s, 3);
    // Two healthy seconds after the last breach are fewer than min_stable_s = 3.
    const auto brief = recovery(seconds({{0, 5, 0}, {10, 0, 5}, {10, 0, 5}}), 250);
    EXPECT_FALSE(brief.recovered_s);
    const auto enough = recovery(seconds({{0, 5, 0}, {10, 0, 5}, {10, 0, 5}}), 250, 2);
    ASSERT_TRUE(enough.recovered_s);
    EXPECT_DOUBLE_EQ(*enough.recovered_s, 1);
}

TEST(DrillReport, JsonCarriesTimelineAndTimeToRecover) {
    Report report;
    report.options.scenario = "leak";
    report.options.duration_s = 8;
    report.options.slo_ms = 100;
    report.started_at = std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'250));
    report.incident_start_s = 2;
    auto& web = report.roles["web"];
    for (int s = 0; s < 8; ++s) {
        const bool bad = s == 2 || s == 3;
        web.requests.push_back(bad ? failed_at(s + 0.1) : ok_at(s + 0.1, 4));
        if (bad) {
            ++web.failed["53300"];
        } else {
            ++web.ok;
            web.latency_ms.push_back(4);
        }
    }
    report.roles["leaky-worker"].requests.push_back(failed_at(2.5, ""));
    report.roles["leaky-worker"].failed[""] = 1;
    const auto j = to_json(report);
    EXPECT_EQ(j["scenario"], "leak");
    EXPECT_EQ(j["started_at"], "2023-11-14T22:13:20.250Z");
    EXPECT_DOUBLE_EQ(j["started_at_unix"].get<double>(), 1'700'000'000.25);
    EXPECT_DOUBLE_EQ(j["incident_start_s"].get<double>(), 2);
    const auto& w = j["roles"]["web"];
    EXPECT_EQ(w["ok"], 6);
    EXPECT_EQ(w["failed"], 2);
    EXPECT_EQ(w["failed_by"]["53300"], 2);
    EXPECT_DOUBLE_EQ(w["p99_ms"].get<double>(), 4);
    ASSERT_EQ(w["timeline"].size(), 8u);
    EXPECT_EQ(w["timeline"][2]["failed"], 1);
    EXPECT_DOUBLE_EQ(w["first_breach_s"].get<double>(), 2);
    EXPECT_DOUBLE_EQ(w["recovered_s"].get<double>(), 4);
    EXPECT_DOUBLE_EQ(w["time_to_recover_s"].get<double>(), 2);
    const auto& leaky = j["roles"]["leaky-worker"];
    EXPECT_EQ(leaky["failed_by"]["?"], 1);  // no SQLSTATE
    EXPECT_TRUE(leaky["recovered_s"].is_null());
    EXPECT_TRUE(leaky["time_to_recover_s"].is_null());
}

}  // namespace
}  // namespace poolguard::drill
