// Tests the log_stats line (admin/stats_log): PgBouncer's field order, sums over databases, averages.
#include "admin/stats_log.h"

#include <gtest/gtest.h>

namespace poolguard::admin {
namespace {

TEST(StatsLogLine, ZeroWhenNothingHappened) {
    EXPECT_EQ(stats_log_line({}),
              "stats: 0 xacts/s, 0 queries/s, 0 client parses/s, 0 server parses/s, 0 binds/s, in 0 B/s, out "
              "0 B/s, xact 0 us, query 0 us, wait 0 us");
}

TEST(StatsLogLine, SumsDatabasesAndAveragesDurations) {
    StatsRow a;
    a.database = "a";
    a.xact_count = 10;
    a.query_count = 20;
    a.bytes_received = 1000;
    a.bytes_sent = 5000;
    a.xact_time_us = 10 * 300;
    a.query_time_us = 20 * 100;
    a.wait_time_us = 7;
    a.client_parse_count = 1;
    a.server_parse_count = 2;
    a.bind_count = 3;
    StatsRow b = a;
    b.database = "b";
    b.xact_time_us = 10 * 100;  // a: 300 us per xact, b: 100 us -> 200 us overall
    EXPECT_EQ(
        stats_log_line({a, b}),
        "stats: 20 xacts/s, 40 queries/s, 2 client parses/s, 4 server parses/s, 6 binds/s, in 2000 B/s, "
        "out 10000 B/s, xact 200 us, query 100 us, wait 14 us");
}

}  // namespace
}  // namespace poolguard::admin
