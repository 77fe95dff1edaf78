// Tests duration parsing and age formatting.
#include "dbview/duration.h"

#include <gtest/gtest.h>

namespace poolguard::dbview {
namespace {

TEST(Duration, Parses) {
    EXPECT_DOUBLE_EQ(*parse_duration_seconds("90s"), 90);
    EXPECT_DOUBLE_EQ(*parse_duration_seconds("5m"), 300);
    EXPECT_DOUBLE_EQ(*parse_duration_seconds("1h"), 3600);
    EXPECT_DOUBLE_EQ(*parse_duration_seconds("1s"), 1);
    EXPECT_DOUBLE_EQ(*parse_duration_seconds("1h30m"), 5400);
    EXPECT_DOUBLE_EQ(*parse_duration_seconds("250ms"), 0.25);
    EXPECT_DOUBLE_EQ(*parse_duration_seconds("45"), 45);
    EXPECT_DOUBLE_EQ(*parse_duration_seconds("1.5m"), 90);
}

TEST(Duration, Rejects) {
    EXPECT_FALSE(parse_duration_seconds(""));
    EXPECT_FALSE(parse_duration_seconds("m"));
    EXPECT_FALSE(parse_duration_seconds("5x"));
    EXPECT_FALSE(parse_duration_seconds("-5s"));
    EXPECT_FALSE(parse_duration_seconds("5 m"));
    EXPECT_FALSE(parse_duration_seconds("10 "));
}

TEST(Duration, FormatsAges) {
    EXPECT_EQ(format_age(0.42), "0.4s");
    EXPECT_EQ(format_age(42), "42s");
    EXPECT_EQ(format_age(75), "1m15s");
    EXPECT_EQ(format_age(3725), "1h02m");
    EXPECT_EQ(format_age(90000), "1d01h");
}

}  // namespace
}  // namespace poolguard::dbview
