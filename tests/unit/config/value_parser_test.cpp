// Tests the single-value parsers of the configuration loader: integers, booleans, durations, lists, enums.
#include "config/value_parser.h"

#include <gtest/gtest.h>

#include <climits>

namespace poolguard::config {
namespace {

using namespace std::chrono_literals;

TEST(ConfigValueParser, IntegerAcceptsPlainDecimal) {
    EXPECT_EQ(parse_integer("0", 0, 10).value(), 0);
    EXPECT_EQ(parse_integer("10", 0, 10).value(), 10);
    EXPECT_EQ(parse_integer("-3", -5, 10).value(), -3);
    EXPECT_EQ(parse_integer("2147483647", 0, INT_MAX).value(), INT_MAX);
}

TEST(ConfigValueParser, IntegerRejectsGarbageFractionsAndRange) {
    EXPECT_EQ(parse_integer("abc", 0, 10).error(), "expected an integer");
    EXPECT_EQ(parse_integer("", 0, 10).error(), "expected an integer");
    EXPECT_EQ(parse_integer("10x", 0, 100).error(), "expected an integer");
    EXPECT_EQ(parse_integer("+5", 0, 10).error(), "expected an integer");
    EXPECT_EQ(parse_integer("1.5", 0, 10).error(), "expected an integer, not a fraction");
    EXPECT_EQ(parse_integer("-1", 0, INT_MAX).error(), "must not be negative");
    EXPECT_EQ(parse_integer("70000", 1, 65535).error(), "must be between 1 and 65535");
    EXPECT_EQ(parse_integer("99999999999999999999999", 0, INT_MAX).error(),
              "must be between 0 and 2147483647");
    EXPECT_EQ(parse_integer("-99999999999999999999999", 0, INT_MAX).error(), "must not be negative");
    EXPECT_FALSE(parse_integer("2147483648", 0, INT_MAX));
}

TEST(ConfigValueParser, BoolWords) {
    for (const char* yes : {"1", "on", "ON", "true", "True", "yes"})
        EXPECT_TRUE(parse_bool(yes).value()) << yes;
    for (const char* no : {"0", "off", "false", "FALSE", "no"})
        EXPECT_FALSE(parse_bool(no).value()) << no;
    EXPECT_FALSE(parse_bool("2"));
    EXPECT_FALSE(parse_bool(""));
    EXPECT_FALSE(parse_bool("enabled"));
}

TEST(ConfigValueParser, IntegerOrBool) {
    EXPECT_EQ(parse_integer_or_bool("on", 0, 1).value(), 1);
    EXPECT_EQ(parse_integer_or_bool("no", 0, 1).value(), 0);
    EXPECT_EQ(parse_integer_or_bool("45", 0, INT_MAX).value(), 45);
    EXPECT_FALSE(parse_integer_or_bool("2", 0, 1));
    EXPECT_FALSE(parse_integer_or_bool("maybe", 0, 1));
}

TEST(ConfigValueParser, DurationBareNumberIsSeconds) {
    EXPECT_EQ(parse_duration("120").value(), 120s);
    EXPECT_EQ(parse_duration("0.5").value(), 500ms);
    EXPECT_EQ(parse_duration("0").value(), 0us);
    EXPECT_EQ(parse_duration("3600.0").value(), 1h);
    EXPECT_EQ(parse_duration(".25").value(), 250ms);
}

TEST(ConfigValueParser, DurationUnits) {
    EXPECT_EQ(parse_duration("250us").value(), 250us);
    EXPECT_EQ(parse_duration("250ms").value(), 250ms);
    EXPECT_EQ(parse_duration("10s").value(), 10s);
    EXPECT_EQ(parse_duration("5min").value(), 5min);
    EXPECT_EQ(parse_duration("2h").value(), 2h);
    EXPECT_EQ(parse_duration("1d").value(), 24h);
    EXPECT_EQ(parse_duration("1.5min").value(), 90s);
    EXPECT_EQ(parse_duration("10 ms").value(), 10ms);
    EXPECT_EQ(parse_duration("10MS").value(), 10ms);
}

TEST(ConfigValueParser, DurationRejectsBadInput) {
    EXPECT_FALSE(parse_duration(""));
    EXPECT_FALSE(parse_duration("abc"));
    EXPECT_FALSE(parse_duration("inf"));
    EXPECT_FALSE(parse_duration("nan"));
    EXPECT_FALSE(parse_duration("-inf"));
    EXPECT_FALSE(parse_duration("+5"));
    EXPECT_EQ(parse_duration("-1").error(), "must not be negative");
    EXPECT_EQ(parse_duration("1e300").error(), "too large");
    EXPECT_EQ(parse_duration("1e30d").error(), "too large");
    auto unknown = parse_duration("5m");
    ASSERT_FALSE(unknown);
    EXPECT_NE(unknown.error().find("unknown unit 'm'"), std::string::npos);
    EXPECT_FALSE(parse_duration("5 fortnights"));
}

TEST(ConfigValueParser, OctalMode) {
    EXPECT_EQ(parse_octal_mode("0777").value(), 0777);
    EXPECT_EQ(parse_octal_mode("755").value(), 0755);
    EXPECT_EQ(parse_octal_mode("0").value(), 0);
    EXPECT_FALSE(parse_octal_mode("0778"));
    EXPECT_FALSE(parse_octal_mode("rwx"));
    EXPECT_FALSE(parse_octal_mode(""));
    EXPECT_FALSE(parse_octal_mode("17777"));
    EXPECT_FALSE(parse_octal_mode("0000000000000000000000000000000000000000000000000000017777"));
}

TEST(ConfigValueParser, ListSplitsOnCommasAndTrims) {
    EXPECT_EQ(parse_list("a,b , c"), (std::vector<std::string>{"a", "b", "c"}));
    EXPECT_EQ(parse_list(" * "), (std::vector<std::string>{"*"}));
    EXPECT_EQ(parse_list(""), (std::vector<std::string>{}));
    EXPECT_EQ(parse_list(" , a,,"), (std::vector<std::string>{"a"}));
}

TEST(ConfigValueParser, Enumerations) {
    EXPECT_EQ(parse_pool_mode("transaction").value(), PoolMode::kTransaction);
    EXPECT_EQ(parse_pool_mode("Session").value(), PoolMode::kSession);
    EXPECT_EQ(parse_pool_mode("statement").value(), PoolMode::kStatement);
    EXPECT_FALSE(parse_pool_mode("txn"));

    EXPECT_EQ(parse_auth_type("scram-sha-256").value(), AuthType::kScramSha256);
    EXPECT_EQ(parse_auth_type("md5").value(), AuthType::kMd5);
    EXPECT_EQ(parse_auth_type("trust").value(), AuthType::kTrust);
    EXPECT_EQ(parse_auth_type("plain").value(), AuthType::kPlain);
    EXPECT_EQ(parse_auth_type("any").value(), AuthType::kAny);
    EXPECT_EQ(parse_auth_type("hba").value(), AuthType::kHba);
    EXPECT_EQ(parse_auth_type("cert").value(), AuthType::kCert);
    EXPECT_FALSE(parse_auth_type("scram"));
    auto pam = parse_auth_type("pam");
    ASSERT_FALSE(pam);
    EXPECT_NE(pam.error().find("not supported by poolguard"), std::string::npos);

    EXPECT_EQ(parse_sslmode("Verify-Full").value(), "verify-full");
    EXPECT_FALSE(parse_sslmode("on"));
}

TEST(ConfigValueParser, EnumToStringRoundTrips) {
    for (PoolMode mode : {PoolMode::kSession, PoolMode::kTransaction, PoolMode::kStatement}) {
        EXPECT_EQ(parse_pool_mode(to_string(mode)).value(), mode);
    }
    for (AuthType type : {AuthType::kTrust, AuthType::kPlain, AuthType::kMd5, AuthType::kScramSha256,
                          AuthType::kAny, AuthType::kHba, AuthType::kCert}) {
        EXPECT_EQ(parse_auth_type(to_string(type)).value(), type);
    }
    EXPECT_STREQ(to_string(AuthType::kScramSha256), "scram-sha-256");
}

TEST(ConfigValueParser, HostPort) {
    EXPECT_EQ(parse_host_port("127.0.0.1:9127").value(), "127.0.0.1:9127");
    EXPECT_EQ(parse_host_port("[::1]:80").value(), "[::1]:80");
    EXPECT_EQ(parse_host_port(":8080").value(), ":8080");
    EXPECT_EQ(parse_host_port("").value(), "");
    EXPECT_FALSE(parse_host_port("localhost"));
    EXPECT_FALSE(parse_host_port("localhost:0"));
    EXPECT_FALSE(parse_host_port("localhost:http"));
    EXPECT_FALSE(parse_host_port("::1:80"));
    EXPECT_FALSE(parse_host_port("[::1]80"));
    EXPECT_FALSE(parse_host_port("[::1"));
}

}  // namespace
}  // namespace poolguard::config
