// Tests the admin console's lexical layer (admin/admin_command): statement splitting and command parsing.
#include "admin/admin_command.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace poolguard::admin {
namespace {

using Views = std::vector<std::string_view>;

TEST(AdminSplitStatements, SplitsOutsideQuotesAndDropsBlanks) {
    EXPECT_EQ(split_statements(""), Views{});
    EXPECT_EQ(split_statements(" ;\n; "), Views{});
    EXPECT_EQ(split_statements("show pools"), Views{"show pools"});
    EXPECT_EQ(split_statements("  show pools ;  "), (Views{"show pools"}));
    EXPECT_EQ(split_statements("a;b;;c"), (Views{"a", "b", "c"}));
    EXPECT_EQ(split_statements("set x = 'a;b''c;'; pause"), (Views{"set x = 'a;b''c;'", "pause"}));
    EXPECT_EQ(split_statements("pause \"x;y\"; resume"), (Views{"pause \"x;y\"", "resume"}));
    // An unterminated quote swallows the rest; parse_command reports it.
    EXPECT_EQ(split_statements("set x = 'a; pause"), (Views{"set x = 'a; pause"}));
}

TEST(AdminParseCommand, VerbAndArgument) {
    auto c = parse_command("PAUSE");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->verb, "pause");
    EXPECT_FALSE(c->arg);

    c = parse_command("  Pause\tMyDb ");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->verb, "pause");
    EXPECT_EQ(c->arg, "MyDb");
    EXPECT_EQ(c->text, "Pause\tMyDb");

    c = parse_command("kill \"we\"\"ird db\"");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->arg, "we\"ird db");

    c = parse_command("disable app-1.x");  // bare words may hold any character but space, =, quotes
    ASSERT_TRUE(c);
    EXPECT_EQ(c->arg, "app-1.x");
}

TEST(AdminParseCommand, Set) {
    auto c = parse_command("SET Key = Value");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->verb, "set");
    EXPECT_EQ(c->set_key, "key");
    EXPECT_EQ(c->set_value, "Value");

    c = parse_command("set \"Key\" TO 'it''s'");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->set_key, "Key");
    EXPECT_EQ(c->set_value, "it's");

    c = parse_command("set k='='");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->set_value, "=");
}

TEST(AdminParseCommand, Errors) {
    for (const char* bad :
         {"", "=", "'show'", "show pools now", "pause 'db'", "pause =", "set k", "set k = ", "set k to = v",
          "set = v", "show \"unterminated", "set k = 'unterminated", "pause \"\""}) {
        const auto c = parse_command(bad);
        ASSERT_FALSE(c) << bad;
        EXPECT_EQ(c.error().sqlstate, "42601") << bad;
    }
    // Unknown verbs parse (the console rejects them); too many words do not.
    EXPECT_TRUE(parse_command("frob it"));
    EXPECT_EQ(parse_command("frob it now").error().message, "invalid command 'frob it now', use SHOW HELP;");
    EXPECT_EQ(parse_command("set k = 'x").error().message, "unterminated quoted string");
}

TEST(AdminExcerpt, CutsOnCharacterBoundariesAndHidesNul) {
    EXPECT_EQ(excerpt("abc"), "abc");
    EXPECT_EQ(excerpt("abcdef", 3), "abc...");
    EXPECT_EQ(excerpt(std::string_view("a\0b", 3)), "a b");
    // "é" is two bytes: never cut in the middle.
    EXPECT_EQ(excerpt("a\xc3\xa9z", 2), "a...");
    EXPECT_EQ(excerpt("a\xc3\xa9z", 3), "a\xc3\xa9...");
}

}  // namespace
}  // namespace poolguard::admin
