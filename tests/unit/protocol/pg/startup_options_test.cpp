// Tests parsing of the `options` startup parameter.
#include "protocol/pg/startup_options.h"

#include <gtest/gtest.h>

namespace poolguard::protocol::pg {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(StartupOptions, TheThreeSpellingsOfASetting) {
    auto r = parse_startup_options("-c application_name=foo  -cDateStyle=SQL\t--time-zone=UTC");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, (Pairs{{"application_name", "foo"}, {"DateStyle", "SQL"}, {"time_zone", "UTC"}}));
}

TEST(StartupOptions, BackslashEscapesKeepSpacesInValues) {
    auto r = parse_startup_options("-c application_name=a\\ b\\\\c");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(*r, (Pairs{{"application_name", "a b\\c"}}));
    auto empty = parse_startup_options("   ");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
}

TEST(StartupOptions, OtherSwitchesAreRefusedWithPgbouncersText) {
    for (const char* bad : {"-X", "-c", "-c novalue", "--=x", "-c =x", "plain"}) {
        auto r = parse_startup_options(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().sqlstate, "08P01");
        EXPECT_EQ(
            r.error().message,
            "unsupported options startup parameter: only '-c config=val' and '--config=val' are allowed");
    }
}

}  // namespace
}  // namespace poolguard::protocol::pg
