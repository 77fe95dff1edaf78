// Tests DSN parsing: both URI schemes, escapes, IPv6, query parameters, libpq conninfo and the errors.
#include "dbview/dsn.h"

#include <gtest/gtest.h>

namespace poolguard::dbview {
namespace {

TEST(Dsn, PostgresUriWithEverything) {
    auto d = parse_dsn("postgres://app:s%40cret@db.example:6543/orders?sslmode=require&application_name=x");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->engine, Engine::postgres);
    EXPECT_EQ(d->user, "app");
    EXPECT_EQ(d->password, "s@cret");
    EXPECT_EQ(d->host, "db.example");
    EXPECT_EQ(d->port, 6543);
    EXPECT_EQ(d->database, "orders");
    EXPECT_EQ(d->params.at("sslmode"), "require");
    EXPECT_EQ(d->params.at("application_name"), "x");
}

TEST(Dsn, PostgresqlSchemeAndDefaults) {
    auto d = parse_dsn("postgresql://localhost");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->engine, Engine::postgres);
    EXPECT_EQ(d->host, "localhost");
    EXPECT_EQ(d->port, 0);
    EXPECT_EQ(d->port_or_default(), 5432);
    EXPECT_TRUE(d->user.empty());
    EXPECT_TRUE(d->database.empty());
}

TEST(Dsn, MysqlUri) {
    auto d = parse_dsn("mysql://root:rootpass@127.0.0.1:3307/mysql");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->engine, Engine::mysql);
    EXPECT_EQ(d->user, "root");
    EXPECT_EQ(d->password, "rootpass");
    EXPECT_EQ(d->host, "127.0.0.1");
    EXPECT_EQ(d->port, 3307);
    EXPECT_EQ(d->database, "mysql");
    auto m = parse_dsn("mariadb://u@h");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->engine, Engine::mysql);
    EXPECT_EQ(m->port_or_default(), 3306);
}

TEST(Dsn, PasswordWithUnescapedAtSplitsAtLastAt) {
    auto d = parse_dsn("mysql://u:p@ss@host/db");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->user, "u");
    EXPECT_EQ(d->password, "p@ss");
    EXPECT_EQ(d->host, "host");
}

TEST(Dsn, Ipv6Host) {
    auto d = parse_dsn("postgres://u@[::1]:5433/db");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->host, "::1");
    EXPECT_EQ(d->port, 5433);
}

TEST(Dsn, QueryHostAndPortFillEmptyAuthority) {
    auto d = parse_dsn("postgres:///db?host=/var/run/postgresql&port=5434");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->host, "/var/run/postgresql");
    EXPECT_EQ(d->port, 5434);
    EXPECT_EQ(d->database, "db");
}

TEST(Dsn, LibpqConninfo) {
    auto d = parse_dsn("host=10.0.0.1 port=5432 user=app password='a b' dbname=orders sslmode=disable");
    ASSERT_TRUE(d) << d.error().message;
    EXPECT_EQ(d->engine, Engine::postgres);
    EXPECT_EQ(d->host, "10.0.0.1");
    EXPECT_EQ(d->password, "a b");
    EXPECT_EQ(d->database, "orders");
    EXPECT_EQ(d->params.at("sslmode"), "disable");
    EXPECT_EQ(d->original, "host=10.0.0.1 port=5432 user=app password='a b' dbname=orders sslmode=disable");
}

TEST(Dsn, Errors) {
    EXPECT_FALSE(parse_dsn(""));
    EXPECT_FALSE(parse_dsn("localhost:5432"));
    EXPECT_FALSE(parse_dsn("redis://h:6379"));
    EXPECT_FALSE(parse_dsn("postgres://h:notaport/db"));
    EXPECT_FALSE(parse_dsn("postgres://h:70000/db"));
    EXPECT_FALSE(parse_dsn("postgres://u:%zz@h/db"));
    EXPECT_FALSE(parse_dsn("postgres://u:%4@h/db"));
    EXPECT_FALSE(parse_dsn("postgres://[::1/db"));
    auto e = parse_dsn("redis://h");
    EXPECT_NE(e.error().message.find("unknown scheme"), std::string::npos);
}

TEST(Dsn, LibpqConninfoCarriesWhatWasParsed) {
    auto d = parse_dsn("postgres://app:p@ss'w\\d@db:6543/orders?sslmode=disable");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->libpq_conninfo(),
              "host='db' port='6543' user='app' password='p@ss\\'w\\\\d' dbname='orders' sslmode='disable'");
    auto bare = parse_dsn("postgres://");
    ASSERT_TRUE(bare);
    EXPECT_EQ(bare->libpq_conninfo(), "");
}

TEST(Dsn, RedactedHidesPassword) {
    auto d = parse_dsn("postgres://app:s%40cret@db:5432/orders");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->redacted(), "postgres://app:***@db:5432/orders");
    auto c = parse_dsn("host=h password=hunter2 user=u");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->redacted(), "host=h password=*** user=u");
    auto n = parse_dsn("postgres://app@db/orders");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->redacted(), "postgres://app@db/orders");
}

}  // namespace
}  // namespace poolguard::dbview
