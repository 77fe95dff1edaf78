// Tests the libpq-style connection string parser used by [databases] and [users].
#include "config/connstring.h"

#include <gtest/gtest.h>

namespace poolguard::config {
namespace {

std::vector<std::pair<std::string, std::string>> pairs_of(std::string_view text) {
    auto parsed = parse_connstring(text);
    EXPECT_TRUE(parsed) << (parsed ? "" : parsed.error());
    std::vector<std::pair<std::string, std::string>> out;
    if (parsed) {
        for (auto& pair : *parsed)
            out.emplace_back(pair.key, pair.value);
    }
    return out;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ConfigConnstring, SplitsPairsOnWhitespace) {
    EXPECT_EQ(pairs_of("host=127.0.0.1 port=5432\tdbname=app"),
              (Pairs{{"host", "127.0.0.1"}, {"port", "5432"}, {"dbname", "app"}}));
}

TEST(ConfigConnstring, EmptyIsValid) {
    EXPECT_EQ(pairs_of(""), Pairs{});
    EXPECT_EQ(pairs_of("   "), Pairs{});
}

TEST(ConfigConnstring, KeysAreLowercased) {
    EXPECT_EQ(pairs_of("HOST=x"), (Pairs{{"host", "x"}}));
}

TEST(ConfigConnstring, SpacesAroundEqualsAllowed) {
    EXPECT_EQ(pairs_of("host = db1  port =6000"), (Pairs{{"host", "db1"}, {"port", "6000"}}));
}

TEST(ConfigConnstring, QuotedValueKeepsSpaces) {
    EXPECT_EQ(pairs_of("password='a b' user=x"), (Pairs{{"password", "a b"}, {"user", "x"}}));
}

TEST(ConfigConnstring, DoubledQuoteIsOneQuote) {
    EXPECT_EQ(pairs_of("password='it''s' connect_query='SELECT ''x'''"),
              (Pairs{{"password", "it's"}, {"connect_query", "SELECT 'x'"}}));
    EXPECT_EQ(pairs_of("password=''"), (Pairs{{"password", ""}}));
    EXPECT_EQ(pairs_of("password=''''"), (Pairs{{"password", "'"}}));
}

TEST(ConfigConnstring, UnquotedValueKeepsSpecialCharacters) {
    EXPECT_EQ(pairs_of("password=p@ss=w;rd#1 host=/var/run/postgresql"),
              (Pairs{{"password", "p@ss=w;rd#1"}, {"host", "/var/run/postgresql"}}));
}

TEST(ConfigConnstring, Errors) {
    auto unterminated = parse_connstring("password='abc host=x");
    ASSERT_FALSE(unterminated);
    EXPECT_EQ(unterminated.error(), "unterminated quoted value for 'password'");

    auto no_equals = parse_connstring("host");
    ASSERT_FALSE(no_equals);
    EXPECT_EQ(no_equals.error(), "missing '=' after 'host'");

    auto bad_key = parse_connstring("=5");
    ASSERT_FALSE(bad_key);
    EXPECT_NE(bad_key.error().find("unexpected character '='"), std::string::npos);

    auto glued = parse_connstring("password='a'b");
    ASSERT_FALSE(glued);
    EXPECT_NE(glued.error().find("missing space after the quoted value"), std::string::npos);
}

}  // namespace
}  // namespace poolguard::config
