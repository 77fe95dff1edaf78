// Tests the auth_hba_file / auth_ident_file parser and the matcher, without files or sockets.
#include "auth/hba.h"

#include <gtest/gtest.h>

#include <map>

namespace poolguard::auth {
namespace {

HbaLogin tcp(std::string ip, std::string db, std::string user, bool tls = false) {
    return HbaLogin{false, tls, parse_ip(ip), std::move(db), std::move(user), false};
}
HbaLogin local(std::string db, std::string user) {
    return HbaLogin{true, false, std::nullopt, std::move(db), std::move(user), false};
}
std::optional<HbaMethod> method_for(const HbaRules& r, const HbaLogin& l) {
    const HbaRule* rule = match_hba(r, l);
    return rule ? std::optional(rule->method) : std::nullopt;
}

TEST(Hba, FirstMatchingLineWinsByUserAndAddress) {
    auto p = parse_hba(
        "# comment\n"
        "host all hrej 127.0.0.1/32 reject\n"
        "host all htrust 127.0.0.1/32 trust   # trailing comment\n"
        "host all hmd5 127.0.0.1/32 md5\n"
        "host all all 127.0.0.1/32 scram-sha-256\n"
        "local all all peer\n",
        nullptr);
    ASSERT_TRUE(p.warnings.empty()) << p.warnings[0];
    ASSERT_EQ(p.rules.rules.size(), 5u);
    EXPECT_EQ(method_for(p.rules, tcp("127.0.0.1", "postgres", "hrej")), HbaMethod::kReject);
    EXPECT_EQ(method_for(p.rules, tcp("127.0.0.1", "postgres", "htrust")), HbaMethod::kTrust);
    EXPECT_EQ(method_for(p.rules, tcp("127.0.0.1", "postgres", "hmd5")), HbaMethod::kMd5);
    EXPECT_EQ(method_for(p.rules, tcp("127.0.0.1", "postgres", "app")), HbaMethod::kScramSha256);
    EXPECT_EQ(method_for(p.rules, local("postgres", "app")), HbaMethod::kPeer);
    EXPECT_EQ(method_for(p.rules, tcp("127.0.0.2", "postgres", "app")), std::nullopt);  // no line
    EXPECT_EQ(p.rules.rules[1].line, 3);
}

TEST(Hba, HostSslAndHostNoSslFollowTheConnectionsTls) {
    auto p = parse_hba("hostssl all all 0.0.0.0/0 cert\nhostnossl all all all md5\n", nullptr);
    ASSERT_TRUE(p.warnings.empty());
    EXPECT_EQ(method_for(p.rules, tcp("10.0.0.1", "d", "u", true)), HbaMethod::kCert);
    EXPECT_EQ(method_for(p.rules, tcp("10.0.0.1", "d", "u", false)), HbaMethod::kMd5);
    EXPECT_EQ(method_for(p.rules, local("d", "u")), std::nullopt);  // host* lines never match a socket
}

TEST(Hba, AddressMasksCidrAndIpv6) {
    auto p = parse_hba(
        "host all a 10.1.0.0 255.255.0.0 trust\n"
        "host all b 192.168.1.0/24 trust\n"
        "host all c ::1/128 trust\n"
        "host all d fe80::/10 trust\n"
        "host all e 0.0.0.0/0 trust\n",
        nullptr);
    ASSERT_TRUE(p.warnings.empty()) << p.warnings[0];
    EXPECT_TRUE(match_hba(p.rules, tcp("10.1.200.3", "x", "a")));
    EXPECT_FALSE(match_hba(p.rules, tcp("10.2.0.1", "x", "a")));
    EXPECT_TRUE(match_hba(p.rules, tcp("192.168.1.77", "x", "b")));
    EXPECT_FALSE(match_hba(p.rules, tcp("192.168.2.1", "x", "b")));
    EXPECT_TRUE(match_hba(p.rules, tcp("::1", "x", "c")));
    EXPECT_FALSE(match_hba(p.rules, tcp("::2", "x", "c")));
    EXPECT_TRUE(match_hba(p.rules, tcp("fe80::1234", "x", "d")));
    EXPECT_FALSE(match_hba(p.rules, tcp("fec0::1", "x", "d")));
    EXPECT_TRUE(match_hba(p.rules, tcp("8.8.8.8", "x", "e")));
    EXPECT_FALSE(match_hba(p.rules, tcp("::8", "x", "e")));  // an IPv4 network holds no IPv6 address
}

TEST(Hba, DatabaseAndUserListsKeywordsAndQuotes) {
    auto p = parse_hba(
        "host db1,db2 u1, u2 all md5\n"
        "host sameuser all all trust\n"
        "host replication repl all scram-sha-256\n"
        "host \"all\" quoted all password\n",
        nullptr);
    ASSERT_TRUE(p.warnings.empty()) << p.warnings[0];
    ASSERT_EQ(p.rules.rules.size(), 4u);
    EXPECT_EQ(method_for(p.rules, tcp("1.2.3.4", "db2", "u2")), HbaMethod::kMd5);
    EXPECT_EQ(method_for(p.rules, tcp("1.2.3.4", "alice", "alice")), HbaMethod::kTrust);
    EXPECT_EQ(method_for(p.rules, tcp("1.2.3.4", "db3", "u1")), std::nullopt);
    // `replication` matches physical replication only; `all` does not match it.
    auto repl = tcp("1.2.3.4", "replication", "repl");
    repl.physical_replication = true;
    EXPECT_EQ(method_for(p.rules, repl), HbaMethod::kScramSha256);
    EXPECT_EQ(method_for(p.rules, tcp("1.2.3.4", "replication", "repl")), std::nullopt);
    // A quoted "all" is a database named all.
    EXPECT_EQ(method_for(p.rules, tcp("1.2.3.4", "all", "quoted")), HbaMethod::kPassword);
    EXPECT_EQ(method_for(p.rules, tcp("1.2.3.4", "other", "quoted")), std::nullopt);
}

TEST(Hba, AtFileIncludesNamesRelativeToTheHbaFile) {
    std::map<std::string, std::string> files{{"users.lst", "app\n# comment\nhmd5, other\n"},
                                             {"dbs.lst", "db1 db2"}};
    auto reader = [&](const std::string& name) -> Result<std::string> {
        auto it = files.find(name);
        if (it == files.end()) return fail("no such file");
        return it->second;
    };
    auto p = parse_hba("host @dbs.lst @users.lst all md5\nhost all @missing.lst all trust\n", reader);
    ASSERT_EQ(p.rules.rules.size(), 1u);
    ASSERT_EQ(p.warnings.size(), 1u);
    EXPECT_NE(p.warnings[0].find("hba line 2"), std::string::npos) << p.warnings[0];
    EXPECT_TRUE(match_hba(p.rules, tcp("1.1.1.1", "db2", "other")));
    EXPECT_TRUE(match_hba(p.rules, tcp("1.1.1.1", "db1", "app")));
    EXPECT_FALSE(match_hba(p.rules, tcp("1.1.1.1", "db3", "app")));
}

TEST(Hba, UnusableLinesAreSkippedWithAWarningNamingTheLine) {
    auto p = parse_hba(
        "host all all 127.0.0.1/32 bogusmethod\n"
        "host all all 127.0.0.1/33 md5\n"
        "host all all example.com md5\n"
        "host samerole all all md5\n"
        "host all +admins all md5\n"
        "host all all 10.0.0.0 md5\n"
        "local all all\n"
        "host all all all md5 map=x\n"
        "host all all all md5 clientcert=1\n"
        "sslhost all all all md5\n"
        "host all all all trust\n",
        nullptr);
    ASSERT_EQ(p.rules.rules.size(), 1u);
    EXPECT_EQ(p.rules.rules[0].line, 11);
    ASSERT_EQ(p.warnings.size(), 10u);
    EXPECT_EQ(p.warnings[0], "hba line 1: unsupported method: bogusmethod; line ignored");
}

TEST(Hba, ContinuationLinesAndMapOption) {
    auto p = parse_hba("local all \\\n all peer map=m1\n", nullptr);
    ASSERT_TRUE(p.warnings.empty()) << p.warnings[0];
    ASSERT_EQ(p.rules.rules.size(), 1u);
    EXPECT_EQ(p.rules.rules[0].map, "m1");
    EXPECT_EQ(p.rules.rules[0].method, HbaMethod::kPeer);
}

TEST(Ident, MapsSystemUsersToDatabaseUsers) {
    auto p = parse_ident("# map sys db\nm1 root postgres\nm1 postgres all\nm2 /^(.*)$ \\1\nbad line\n");
    ASSERT_EQ(p.maps.entries.size(), 2u);
    EXPECT_EQ(p.warnings.size(), 2u);
    EXPECT_TRUE(ident_allows(p.maps, "m1", "root", "postgres"));
    EXPECT_FALSE(ident_allows(p.maps, "m1", "root", "app"));
    EXPECT_TRUE(ident_allows(p.maps, "m1", "postgres", "anyone"));
    EXPECT_FALSE(ident_allows(p.maps, "m2", "root", "root"));
}

}  // namespace
}  // namespace poolguard::auth
