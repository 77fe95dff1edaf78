// Owns the authentication integration tests: client auth_type plain/md5/SCRAM and md5/SCRAM server logins.
#include <gtest/gtest.h>

#include "fixtures.h"

namespace itest {
namespace {

const std::string kMd5User = "md5user";
const std::string kMd5Pass = "md5 secret";
const std::string kScramUser = "scramuser";
const std::string kScramPass = "scram-secret!";

// The server asks for passwords over TCP (pg_hba md5: md5 for md5-stored, SCRAM for SCRAM-stored passwords).
class Auth : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.hba_method = "md5";
        start_server(o);
        if (!server_->ok()) return;
        server_->create_role(kMd5User, kMd5Pass, PasswordKind::kMd5);
        server_->create_role(kScramUser, kScramPass, PasswordKind::kScram);
    }

    static PoolerConfig auth_config(const std::string& auth_type) {
        PoolerConfig c = base_config("transaction", 2);
        c.set("auth_type", auth_type);
        c.auth(kMd5User, kMd5Pass).auth(kScramUser, kScramPass);
        return c;
    }
};

struct ClientAuthCase {
    std::string auth_type;        // pooler's auth_type
    std::string expected_method;  // what the raw client sees
};

void PrintTo(const ClientAuthCase& c, std::ostream* os) {
    *os << c.auth_type;
}

class ClientAuth : public Auth, public ::testing::WithParamInterface<ClientAuthCase> {};

TEST_P(ClientAuth, CorrectPasswordIsAccepted) {
    PoolguardProcess pooler(auth_config(GetParam().auth_type));
    ASSERT_TRUE(pooler.start());
    LoginOutcome login = raw_login(pooler.host(), pooler.port(), kScramUser, "db", kScramPass);
    EXPECT_TRUE(login.ready) << login.describe();
    EXPECT_EQ(login.auth_method, GetParam().expected_method) << login.describe();
    PgConn c(pooler.dsn(kScramUser, kScramPass));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_EQ(c.exec("select current_user").value(), kScramUser);
}

TEST_P(ClientAuth, WrongPasswordIsRejectedPromptlyWith28P01) {
    PoolguardProcess pooler(auth_config(GetParam().auth_type));
    ASSERT_TRUE(pooler.start());
    LoginOutcome login = raw_login(pooler.host(), pooler.port(), kScramUser, "db", "not the password");
    EXPECT_FALSE(login.ready) << login.describe();
    if (!PoolguardProcess::testing_pgbouncer()) {
        EXPECT_EQ(login.sqlstate, "28P01") << login.describe();  // pgbouncer 1.18 sends 08P01
    }
    EXPECT_LT(login.elapsed_ms, 2000) << login.describe();
    PgConn c(pooler.dsn(kScramUser, "not the password"));
    EXPECT_FALSE(c.ok());
    EXPECT_LT(c.connect_ms(), 2000);
    EXPECT_NE(c.connect_error().find("authentication failed"), std::string::npos) << c.connect_error();
}

TEST_P(ClientAuth, UnknownUserIsRejected) {
    PoolguardProcess pooler(auth_config(GetParam().auth_type));
    ASSERT_TRUE(pooler.start());
    LoginOutcome login = raw_login(pooler.host(), pooler.port(), "nobody", "db", "whatever");
    EXPECT_FALSE(login.ready) << login.describe();
    EXPECT_FALSE(login.timed_out) << login.describe();
    if (!PoolguardProcess::testing_pgbouncer()) {
        EXPECT_EQ(login.sqlstate.substr(0, 2), "28") << login.describe();  // pgbouncer 1.18 sends 08P01
    }
}

INSTANTIATE_TEST_SUITE_P(AuthTypes, ClientAuth,
                         ::testing::Values(ClientAuthCase{"plain", "cleartext"}, ClientAuthCase{"md5", "md5"},
                                           ClientAuthCase{"scram-sha-256", "scram-sha-256"}),
                         [](const ::testing::TestParamInfo<ClientAuthCase>& info) {
                             std::string n = info.param.auth_type;
                             for (char& ch : n) {
                                 if (ch == '-') ch = '_';
                             }
                             return n;
                         });

struct ServerLoginCase {
    std::string client_auth_type;
    std::string user;
    std::string password;
    std::string name;
};

void PrintTo(const ServerLoginCase& c, std::ostream* os) {
    *os << c.name;
}

class ServerLogin : public Auth, public ::testing::WithParamInterface<ServerLoginCase> {};

TEST_P(ServerLogin, PoolerLogsIntoServerWithUserlistPassword) {
    const ServerLoginCase& p = GetParam();
    PoolguardProcess pooler(auth_config(p.client_auth_type));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(p.user, p.password));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult r = c.exec("select current_user", 15s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), p.user);
    // The server really authenticated the pooler's connection with the stored method.
    EXPECT_EQ(pg().count_backends("usename = " + sql_literal(p.user)), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Methods, ServerLogin,
    ::testing::Values(ServerLoginCase{"md5", kMd5User, kMd5Pass, "md5_client_md5_server"},
                      ServerLoginCase{"scram-sha-256", kScramUser, kScramPass, "scram_client_scram_server"},
                      ServerLoginCase{"md5", kScramUser, kScramPass, "md5_client_scram_server"},
                      ServerLoginCase{"scram-sha-256", kMd5User, kMd5Pass, "scram_client_md5_server"},
                      ServerLoginCase{"trust", kScramUser, "", "trust_client_scram_server"}),
    [](const ::testing::TestParamInfo<ServerLoginCase>& info) { return info.param.name; });

TEST_F(Auth, ServerLoginUsesPasswordFromDatabaseEntry) {
    PoolerConfig cfg = auth_config("trust");
    cfg.databases.clear();
    cfg.database("db",
                 pg().pooler_target("user=" + kScramUser + " password=" + quote_conninfo_value(kScramPass)));
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult r = c.exec("select current_user", 15s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), kScramUser) << "user= in [databases] forces the server login user";
}

TEST_F(Auth, WrongServerPasswordIsReportedToClient) {
    PoolerConfig cfg = auth_config("trust");
    cfg.databases.clear();
    cfg.database("db", pg().pooler_target("user=" + kScramUser + " password=wrong"));
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp), 20s);
    bool failed = !c.ok();
    if (!failed) {
        QueryResult r = c.exec("select 1", 20s);
        failed = !r.ok() && !r.timed_out;
    }
    EXPECT_TRUE(failed) << "the client must get an error when the pooler cannot log into the server";
}

}  // namespace
}  // namespace itest
