// Tests that every way a pgbouncer.ini can be wrong yields an Error naming file, line and parameter.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "config/config.h"

namespace poolguard::config {
namespace {

constexpr const char* kAuth = "[pgbouncer]\nauth_file = /etc/pgbouncer/userlist.txt\n";

std::string error_of(const std::string& text) {
    auto result = parse_config(text, "/etc/pg.ini");
    EXPECT_FALSE(result) << "loaded although it should not:\n" << text;
    return result ? std::string() : result.error().message;
}

struct BadValue {
    const char* line;  // placed on line 3, after kAuth
    const char* expected;
};

// The [pgbouncer] and [poolguard] value errors, each on line 3 of /etc/pg.ini.
TEST(ConfigErrors, InvalidPgbouncerValues) {
    const BadValue cases[] = {
        {"max_client_conn = abc",
         "/etc/pg.ini:3: invalid value 'abc' for max_client_conn: expected an integer"},
        {"max_client_conn = 1.5",
         "/etc/pg.ini:3: invalid value '1.5' for max_client_conn: expected an integer, "
         "not a fraction"},
        {"max_client_conn =", "/etc/pg.ini:3: invalid value '' for max_client_conn: expected an integer"},
        {"default_pool_size = -1",
         "/etc/pg.ini:3: invalid value '-1' for default_pool_size: must not be negative"},
        {"min_pool_size = -5", "/etc/pg.ini:3: invalid value '-5' for min_pool_size: must not be negative"},
        {"reserve_pool_size = x",
         "/etc/pg.ini:3: invalid value 'x' for reserve_pool_size: expected an integer"},
        {"listen_port = 0", "/etc/pg.ini:3: invalid value '0' for listen_port: must be between 1 and 65535"},
        {"listen_port = 65536",
         "/etc/pg.ini:3: invalid value '65536' for listen_port: must be between 1 and 65535"},
        {"listen_addr = 127.0.0.1 10.0.0.1",
         "/etc/pg.ini:3: invalid value '127.0.0.1 10.0.0.1' for listen_addr: "
         "addresses must be separated by commas"},
        {"unix_socket_mode = 0999",
         "/etc/pg.ini:3: invalid value '0999' for unix_socket_mode: expected an octal"},
        {"pool_mode = txn",
         "/etc/pg.ini:3: invalid value 'txn' for pool_mode: expected session, transaction or "
         "statement"},
        {"auth_type = scram",
         "/etc/pg.ini:3: invalid value 'scram' for auth_type: expected one of trust, plain, md5, "
         "scram-sha-256, any, hba, cert"},
        {"auth_type = pam",
         "/etc/pg.ini:3: invalid value 'pam' for auth_type: pam is not supported by poolguard"},
        {"server_round_robin = maybe",
         "/etc/pg.ini:3: invalid value 'maybe' for server_round_robin: expected a "
         "boolean"},
        {"log_connections = 2", "/etc/pg.ini:3: invalid value '2' for log_connections: expected a boolean"},
        {"query_wait_timeout = soon",
         "/etc/pg.ini:3: invalid value 'soon' for query_wait_timeout: expected seconds"},
        {"query_timeout = -1", "/etc/pg.ini:3: invalid value '-1' for query_timeout: must not be negative"},
        {"reserve_pool_timeout = 5 m",
         "/etc/pg.ini:3: invalid value '5 m' for reserve_pool_timeout: unknown unit "
         "'m'"},
        {"server_lifetime = inf", "/etc/pg.ini:3: invalid value 'inf' for server_lifetime: expected seconds"},
        {"stats_period = 0", "/etc/pg.ini:3: invalid value '0' for stats_period: must be between 1 and"},
        {"pkt_buf = 0", "/etc/pg.ini:3: invalid value '0' for pkt_buf: must be between 1 and"},
        {"so_reuseport = 2", "/etc/pg.ini:3: invalid value '2' for so_reuseport: must be between 0 and 1"},
        {"tcp_keepalive = sometimes",
         "/etc/pg.ini:3: invalid value 'sometimes' for tcp_keepalive: expected an "
         "integer or a boolean"},
        {"client_tls_sslmode = on",
         "/etc/pg.ini:3: invalid value 'on' for client_tls_sslmode: expected one of "
         "disable, allow, prefer, require, verify-ca, verify-full"},
        {"server_tls_sslmode = strict", "/etc/pg.ini:3: invalid value 'strict' for server_tls_sslmode"},
        {"peer_id = 20000", "/etc/pg.ini:3: invalid value '20000' for peer_id: must be between 0 and 16383"},
        {"max_prepared_statements = -1",
         "/etc/pg.ini:3: invalid value '-1' for max_prepared_statements: must not "
         "be negative"},
        {"[poolguard]\nworker_threads = -2",
         "/etc/pg.ini:4: invalid value '-2' for worker_threads: must not be "
         "negative"},
        {"[poolguard]\nhttp_listen = 9127",
         "/etc/pg.ini:4: invalid value '9127' for http_listen: expected "
         "host:port"},
        {"[poolguard]\nhttp_listen = [::1]:0",
         "/etc/pg.ini:4: invalid value '[::1]:0' for http_listen: port must "
         "be an integer between 1 and 65535"},
    };
    for (const BadValue& c : cases) {
        std::string message = error_of(std::string(kAuth) + c.line + "\n");
        EXPECT_EQ(message.rfind(c.expected, 0), 0u) << "got:    " << message << "\nwanted: " << c.expected;
    }
}

TEST(ConfigErrors, TrailingCommentGetsAHint) {
    std::string message = error_of(std::string(kAuth) + "max_client_conn = 100 ; comment\n");
    EXPECT_EQ(message,
              "/etc/pg.ini:3: invalid value '100 ; comment' for max_client_conn: expected an integer "
              "(';' and '#' start a comment only at the beginning of a line)");
}

// [databases] and [users] value errors name the parameter and the entry.
TEST(ConfigErrors, InvalidDatabaseAndUserValues) {
    const BadValue cases[] = {
        {"[databases]\napp = host=x port=abc",
         "/etc/pg.ini:4: invalid value 'abc' for port in database 'app': expected an integer"},
        {"[databases]\napp = port=0",
         "/etc/pg.ini:4: invalid value '0' for port in database 'app': must be between 1 "
         "and 65535"},
        {"[databases]\napp = pool_size=-1",
         "/etc/pg.ini:4: invalid value '-1' for pool_size in database 'app': must not be negative"},
        {"[databases]\napp = min_pool_size=lots",
         "/etc/pg.ini:4: invalid value 'lots' for min_pool_size in database 'app': expected an integer"},
        {"[databases]\napp = reserve_pool=1.5",
         "/etc/pg.ini:4: invalid value '1.5' for reserve_pool in database 'app': expected an integer"},
        {"[databases]\napp = max_db_connections=x",
         "/etc/pg.ini:4: invalid value 'x' for max_db_connections in database 'app': expected an integer"},
        {"[databases]\napp = pool_mode=txn",
         "/etc/pg.ini:4: invalid value 'txn' for pool_mode in database 'app': expected session, transaction "
         "or "
         "statement"},
        {"[databases]\napp = host=x sslmode=require",
         "/etc/pg.ini:4: unknown parameter 'sslmode' in connection string of database 'app'"},
        {"[databases]\napp = host=x password='abc",
         "/etc/pg.ini:4: invalid connection string for database 'app': unterminated quoted value for "
         "'password'"},
        {"[databases]\napp = host",
         "/etc/pg.ini:4: invalid connection string for database 'app': missing '=' after "
         "'host'"},
        {"[users]\nbob = pool_mode=sometimes",
         "/etc/pg.ini:4: invalid value 'sometimes' for pool_mode in user 'bob': expected session, "
         "transaction or "
         "statement"},
        {"[users]\nbob = max_user_connections=-3",
         "/etc/pg.ini:4: invalid value '-3' for max_user_connections in user 'bob': must not be negative"},
        {"[users]\nbob = pool_sise=5", "/etc/pg.ini:4: unknown parameter 'pool_sise' for user 'bob'"},
        {"[users]\nbob = transaction_timeout=x",
         "/etc/pg.ini:4: invalid value 'x' for transaction_timeout in user 'bob'"},
        {"[users]\nbob = pool_mode='session",
         "/etc/pg.ini:4: invalid settings for user 'bob': unterminated quoted"},
    };
    for (const BadValue& c : cases) {
        std::string message = error_of(std::string(kAuth) + c.line + "\n");
        EXPECT_EQ(message.rfind(c.expected, 0), 0u) << "got:    " << message << "\nwanted: " << c.expected;
    }
}

TEST(ConfigErrors, MalformedLines) {
    EXPECT_EQ(error_of("[pgbouncer]\nlisten_port 6432\n").rfind("/etc/pg.ini:2: syntax error", 0), 0u);
    EXPECT_EQ(error_of("[databases]\n\"unterminated = host=x\n")
                  .rfind("/etc/pg.ini:2: unterminated double quote", 0),
              0u);
    EXPECT_EQ(error_of("[pgbouncer\n").rfind("/etc/pg.ini:1: malformed section header", 0), 0u);
    EXPECT_EQ(error_of("%include\n").rfind("/etc/pg.ini:1: %include needs a file name", 0), 0u);
}

TEST(ConfigErrors, KeyOutsideAnySection) {
    EXPECT_EQ(
        error_of(std::string("listen_port = 5\n") + kAuth),
        "/etc/pg.ini:1: 'listen_port' is outside of any section; add a [pgbouncer], [databases], ... header "
        "above it");
}

TEST(ConfigErrors, AdminConsoleNameIsReserved) {
    EXPECT_EQ(error_of(std::string(kAuth) + "[databases]\npgbouncer = host=x\n"),
              "/etc/pg.ini:4: database name 'pgbouncer' is reserved for the admin console");
}

TEST(ConfigErrors, MissingFile) {
    auto result = load_config("/nonexistent/poolguard/pgbouncer.ini");
    ASSERT_FALSE(result);
    EXPECT_EQ(
        result.error().message,
        "/nonexistent/poolguard/pgbouncer.ini: cannot read configuration file: No such file or directory");
}

TEST(ConfigErrors, UnreadableIncludeNamesLine) {
    std::string message = error_of(std::string(kAuth) + "%include /nonexistent/extra.ini\n");
    EXPECT_EQ(message,
              "/etc/pg.ini:3: cannot read included file '/nonexistent/extra.ini': No such file or directory");
}

TEST(ConfigErrors, IncludeLoop) {
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / ("poolguard_cfg_loop_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    std::ofstream(dir / "a.ini") << "[pgbouncer]\nauth_type = trust\n%include b.ini\n";
    std::ofstream(dir / "b.ini") << "%include a.ini\n";
    auto result = load_config((dir / "a.ini").string());
    fs::remove_all(dir);
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().message.rfind((dir / "b.ini").string() + ":1: %include loop", 0), 0u)
        << result.error().message;
}

TEST(ConfigErrors, PasswordAuthNeedsAnAuthFile) {
    EXPECT_EQ(error_of("[pgbouncer]\nlisten_port = 6432\n"),
              "/etc/pg.ini: auth_file is required for auth_type=md5 (the default): set auth_file (or "
              "auth_user with "
              "auth_query), or choose another auth_type");
    EXPECT_EQ(error_of("[pgbouncer]\n\nauth_type = scram-sha-256\n")
                  .rfind("/etc/pg.ini:3: auth_file is required for auth_type=scram-sha-256", 0),
              0u);
    EXPECT_EQ(error_of("[pgbouncer]\nauth_type = plain\n")
                  .rfind("/etc/pg.ini:2: auth_file is required for "
                         "auth_type=plain",
                         0),
              0u);
    EXPECT_EQ(error_of("").rfind("/etc/pg.ini: auth_file is required", 0), 0u);
}

TEST(ConfigErrors, HbaNeedsAnHbaFile) {
    EXPECT_EQ(error_of("[pgbouncer]\nauth_type = hba\n"),
              "/etc/pg.ini:2: auth_hba_file is required for auth_type=hba");
}

TEST(ConfigErrors, AuthDbnameMustNameADatabase) {
    EXPECT_EQ(error_of(std::string(kAuth) + "auth_dbname = authdb\n[databases]\napp = host=x\n"),
              "/etc/pg.ini:3: invalid value 'authdb' for auth_dbname: not a database in [databases]");
    EXPECT_EQ(error_of(std::string(kAuth) + "[databases]\napp = host=x auth_dbname=nope\n"),
              "/etc/pg.ini:4: invalid value 'nope' for auth_dbname in database 'app': not a database in "
              "[databases]");
}

TEST(ConfigErrors, HostileInputDoesNotCrash) {
    // Binary junk, huge numbers, NULs and unbalanced quotes must come back as errors or warnings, never a
    // crash.
    const std::string inputs[] = {
        std::string("[pgbouncer]\nmax_client_conn = ") + std::string(1, '\0') + "\x01\x02\n",
        "[pgbouncer]\nquery_timeout = 1e400\n",
        "[pgbouncer]\nquery_timeout = 99999999999999999999999999999\n",
        "[pgbouncer]\nlisten_port = 99999999999999999999999999999\n",
        "[databases]\n\"\n",
        "[databases]\na = '''''''\n",
        "[databases]\na = port='\n",
        "[[[[\n",
        "]]]]\n",
        "%\n",
        std::string(100000, '['),
    };
    for (const std::string& input : inputs) {
        auto result = parse_config(input, "junk.ini");
        if (!result) {
            EXPECT_FALSE(result.error().message.empty());
        }
    }
}

}  // namespace
}  // namespace poolguard::config
