// Tests loading pgbouncer.ini into Config: values, defaults, units, warnings, %include and effective
// settings.
#include "config/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace poolguard::config {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A scratch directory unique to the running test, removed afterwards.
class ScratchDir {
  public:
    ScratchDir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = fs::temp_directory_path() / ("poolguard_cfg_" + std::to_string(::getpid()) + "_" +
                                             info->test_suite_name() + "_" + info->name());
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        fs::path file = path_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << text;
        return file.string();
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

// Most tests need some way for users to authenticate, or validation refuses the default auth_type=md5.
constexpr const char* kAuth = "[pgbouncer]\nauth_file = /etc/pgbouncer/userlist.txt\n";

LoadResult load_ok(const std::string& text) {
    auto result = parse_config(text, "pg.ini");
    EXPECT_TRUE(result) << (result ? "" : result.error().message);
    return result ? std::move(*result) : LoadResult{};
}

bool has_warning(const LoadResult& r, std::string_view needle, int line = -1) {
    return std::any_of(r.warnings.begin(), r.warnings.end(), [&](const LoadWarning& w) {
        return w.message.find(needle) != std::string::npos && (line < 0 || w.line == line);
    });
}

std::string all_warnings(const LoadResult& r) {
    std::string out;
    for (const auto& w : r.warnings)
        out += format_warning(w) + "\n";
    return out;
}

constexpr const char* kRealistic = R"ini(
;; A production-style pgbouncer.ini
[databases]
app = host=10.0.0.5 port=5433 dbname=app_production user=app_rw password='s3cret pass' pool_size=40 min_pool_size=5 reserve_pool=5 pool_mode=transaction max_db_connections=80 client_encoding=UTF8 datestyle=ISO timezone=UTC application_name=pool connect_query='SET search_path = app'
reports = host=replica.internal dbname=app_production auth_user=pgbouncer_auth pool_mode=session
local =
"odd-name" = host=/var/run/postgresql
* = host=10.0.0.9 port=5432

[users]
batch = pool_mode=session max_user_connections=10
web = pool_mode=statement

[pgbouncer]
logfile = /var/log/pgbouncer/pgbouncer.log
pidfile = /var/run/pgbouncer/pgbouncer.pid
listen_addr = 127.0.0.1, 10.0.0.2
listen_port = 6543
unix_socket_dir = /var/run/postgresql
unix_socket_mode = 0770
unix_socket_group = postgres
auth_type = scram-sha-256
auth_file = /etc/pgbouncer/userlist.txt
auth_user = pgbouncer_auth
auth_query = SELECT usename, passwd FROM pgbouncer.get_auth($1)
auth_dbname = app
pool_mode = transaction
max_client_conn = 5000
default_pool_size = 25
min_pool_size = 2
reserve_pool_size = 3
reserve_pool_timeout = 0.5
max_db_connections = 100
max_user_connections = 50
server_round_robin = 1
ignore_startup_parameters = extra_float_digits, options
disable_pqexec = 0
application_name_add_host = 1
stats_period = 30
log_connections = 0
log_disconnections = off
log_pooler_errors = yes
log_stats = false
verbose = 1
admin_users = postgres, admin
stats_users = monitoring
server_reset_query = DISCARD ALL
server_reset_query_always = 0
server_check_query = SELECT 1
server_check_delay = 10
server_fast_close = 1
server_lifetime = 1800
server_idle_timeout = 300
server_connect_timeout = 5
server_login_retry = 2
client_login_timeout = 30
autodb_idle_timeout = 600
query_timeout = 0
query_wait_timeout = 60
cancel_wait_timeout = 5
client_idle_timeout = 0
idle_transaction_timeout = 120
suspend_timeout = 15
pkt_buf = 8192
max_packet_size = 1073741824
listen_backlog = 4096
sbuf_loopcnt = 10
so_reuseport = 1
tcp_defer_accept = 0
tcp_socket_buffer = 65536
tcp_keepalive = 1
tcp_keepcnt = 5
tcp_keepidle = 60
tcp_keepintvl = 10
tcp_user_timeout = 30000
max_prepared_statements = 200
client_tls_sslmode = disable
server_tls_sslmode = prefer

[poolguard]
worker_threads = 4
http_listen = 127.0.0.1:9127
)ini";

TEST(ConfigLoader, RealisticFileParsesEveryValue) {
    LoadResult r = load_ok(kRealistic);
    // Every value loads; the only warnings name settings poolguard accepts but does not implement yet.
    for (const auto& w : r.warnings)
        EXPECT_TRUE(w.message.starts_with("accepted, not implemented: ")) << format_warning(w);
    EXPECT_TRUE(has_warning(r, "accepted, not implemented: sbuf_loopcnt")) << all_warnings(r);
    // Implemented since issue 13's second round: no warning.
    for (const char* implemented :
         {"tcp_keepcnt", "tcp_keepidle", "tcp_keepintvl", "tcp_user_timeout", "tcp_socket_buffer"})
        EXPECT_FALSE(has_warning(r, std::string("accepted, not implemented: ") + implemented))
            << implemented << ": " << all_warnings(r);
    EXPECT_FALSE(has_warning(r, "max_client_conn")) << all_warnings(r);
    const Config& c = r.config;
    EXPECT_EQ(c.file, "pg.ini");
    EXPECT_EQ(c.conffile, "pg.ini");

    ASSERT_EQ(c.databases.size(), 5u);
    const DatabaseConfig& app = c.databases[0];
    EXPECT_EQ(app.name, "app");
    EXPECT_EQ(app.host, "10.0.0.5");
    EXPECT_EQ(app.port, 5433);
    EXPECT_EQ(app.dbname, "app_production");
    EXPECT_EQ(app.user, "app_rw");
    EXPECT_EQ(app.password, "s3cret pass");
    EXPECT_EQ(app.pool_size, 40);
    EXPECT_EQ(app.min_pool_size, 5);
    EXPECT_EQ(app.reserve_pool, 5);
    EXPECT_EQ(app.pool_mode, PoolMode::kTransaction);
    EXPECT_EQ(app.max_db_connections, 80);
    EXPECT_EQ(app.client_encoding, "UTF8");
    EXPECT_EQ(app.datestyle, "ISO");
    EXPECT_EQ(app.timezone, "UTC");
    EXPECT_EQ(app.application_name, "pool");
    EXPECT_EQ(app.connect_query, "SET search_path = app");
    EXPECT_EQ(app.line, 4);

    const DatabaseConfig& reports = c.databases[1];
    EXPECT_EQ(reports.auth_user, "pgbouncer_auth");
    EXPECT_EQ(reports.pool_mode, PoolMode::kSession);
    EXPECT_EQ(reports.port, 5432);
    EXPECT_FALSE(reports.pool_size);

    const DatabaseConfig& local = c.databases[2];
    EXPECT_EQ(local.name, "local");
    EXPECT_EQ(local.dbname, "local");
    EXPECT_EQ(local.host, "");

    EXPECT_EQ(c.databases[3].name, "odd-name");
    EXPECT_EQ(c.databases[3].host, "/var/run/postgresql");
    EXPECT_EQ(c.databases[4].name, "*");
    EXPECT_EQ(c.databases[4].dbname, "");

    ASSERT_EQ(c.users.size(), 2u);
    EXPECT_EQ(c.users[0].name, "batch");
    EXPECT_EQ(c.users[0].pool_mode, PoolMode::kSession);
    EXPECT_EQ(c.users[0].max_user_connections, 10);
    EXPECT_EQ(c.users[1].pool_mode, PoolMode::kStatement);
    EXPECT_EQ(c.users[1].max_user_connections, 0);

    EXPECT_EQ(c.logfile, "/var/log/pgbouncer/pgbouncer.log");
    EXPECT_EQ(c.pidfile, "/var/run/pgbouncer/pgbouncer.pid");
    EXPECT_EQ(c.listen_addr, (std::vector<std::string>{"127.0.0.1", "10.0.0.2"}));
    EXPECT_EQ(c.listen_port, 6543);
    EXPECT_EQ(c.unix_socket_dir, "/var/run/postgresql");
    EXPECT_EQ(c.unix_socket_mode, 0770);
    EXPECT_EQ(c.unix_socket_group, "postgres");
    EXPECT_EQ(c.auth_type, AuthType::kScramSha256);
    EXPECT_EQ(c.auth_file, "/etc/pgbouncer/userlist.txt");
    EXPECT_EQ(c.auth_user, "pgbouncer_auth");
    EXPECT_EQ(c.auth_query, "SELECT usename, passwd FROM pgbouncer.get_auth($1)");
    EXPECT_EQ(c.auth_dbname, "app");
    EXPECT_EQ(c.pool_mode, PoolMode::kTransaction);
    EXPECT_EQ(c.max_client_conn, 5000);
    EXPECT_EQ(c.default_pool_size, 25);
    EXPECT_EQ(c.min_pool_size, 2);
    EXPECT_EQ(c.reserve_pool_size, 3);
    EXPECT_EQ(c.reserve_pool_timeout, 500ms);
    EXPECT_EQ(c.max_db_connections, 100);
    EXPECT_EQ(c.max_user_connections, 50);
    EXPECT_TRUE(c.server_round_robin);
    EXPECT_EQ(c.ignore_startup_parameters, (std::vector<std::string>{"extra_float_digits", "options"}));
    EXPECT_FALSE(c.disable_pqexec);
    EXPECT_TRUE(c.application_name_add_host);
    EXPECT_EQ(c.stats_period, 30);
    EXPECT_FALSE(c.log_connections);
    EXPECT_FALSE(c.log_disconnections);
    EXPECT_TRUE(c.log_pooler_errors);
    EXPECT_FALSE(c.log_stats);
    EXPECT_EQ(c.verbose, 1);
    EXPECT_EQ(c.admin_users, (std::vector<std::string>{"postgres", "admin"}));
    EXPECT_EQ(c.stats_users, (std::vector<std::string>{"monitoring"}));
    EXPECT_EQ(c.server_reset_query, "DISCARD ALL");
    EXPECT_FALSE(c.server_reset_query_always);
    EXPECT_EQ(c.server_check_query, "SELECT 1");
    EXPECT_EQ(c.server_check_delay, 10s);
    EXPECT_TRUE(c.server_fast_close);
    EXPECT_EQ(c.server_lifetime, 1800s);
    EXPECT_EQ(c.server_idle_timeout, 300s);
    EXPECT_EQ(c.server_connect_timeout, 5s);
    EXPECT_EQ(c.server_login_retry, 2s);
    EXPECT_EQ(c.client_login_timeout, 30s);
    EXPECT_EQ(c.autodb_idle_timeout, 600s);
    EXPECT_EQ(c.query_timeout, 0s);
    EXPECT_EQ(c.query_wait_timeout, 60s);
    EXPECT_EQ(c.cancel_wait_timeout, 5s);
    EXPECT_EQ(c.client_idle_timeout, 0s);
    EXPECT_EQ(c.idle_transaction_timeout, 120s);
    EXPECT_EQ(c.suspend_timeout, 15s);
    EXPECT_EQ(c.pkt_buf, 8192);
    EXPECT_EQ(c.max_packet_size, 1073741824);
    EXPECT_EQ(c.listen_backlog, 4096);
    EXPECT_EQ(c.sbuf_loopcnt, 10);
    EXPECT_EQ(c.so_reuseport, 1);
    EXPECT_EQ(c.tcp_defer_accept, 0);
    EXPECT_EQ(c.tcp_socket_buffer, 65536);
    EXPECT_EQ(c.tcp_keepalive, 1);
    EXPECT_EQ(c.tcp_keepcnt, 5);
    EXPECT_EQ(c.tcp_keepidle, 60);
    EXPECT_EQ(c.tcp_keepintvl, 10);
    EXPECT_EQ(c.tcp_user_timeout, 30000);
    EXPECT_EQ(c.max_prepared_statements, 200);
    EXPECT_EQ(c.client_tls_sslmode, "disable");
    EXPECT_EQ(c.server_tls_sslmode, "prefer");
    EXPECT_EQ(c.worker_threads, 4);
    EXPECT_EQ(c.http_listen, "127.0.0.1:9127");
    ASSERT_EQ(c.poolguard_entries.size(), 2u);
    EXPECT_EQ(c.poolguard_entries[1].key, "http_listen");
}

// Every default, checked against PgBouncer 1.18's documentation.
TEST(ConfigLoader, DefaultsMatchPgBouncer118) {
    const Config c = load_ok("[pgbouncer]\nauth_type = trust\n").config;
    EXPECT_TRUE(c.databases.empty());
    EXPECT_TRUE(c.users.empty());
    EXPECT_EQ(c.logfile, "");
    EXPECT_EQ(c.pidfile, "");
    EXPECT_TRUE(c.listen_addr.empty());
    EXPECT_EQ(c.listen_port, 6432);
    EXPECT_EQ(c.unix_socket_dir, "/tmp");
    EXPECT_EQ(c.unix_socket_mode, 0777);
    EXPECT_EQ(c.unix_socket_group, "");
    EXPECT_EQ(c.user, "");
    EXPECT_EQ(c.auth_file, "");
    EXPECT_EQ(c.auth_hba_file, "");
    EXPECT_EQ(c.auth_user, "");
    EXPECT_EQ(c.auth_query,
              "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid "
              "WHERE rolname=$1 AND rolcanlogin");
    EXPECT_EQ(c.service_name, "pgbouncer");
    EXPECT_EQ(c.job_name, "pgbouncer");
    EXPECT_EQ(c.conffile, "pg.ini");
    EXPECT_EQ(c.pool_mode, PoolMode::kSession);
    EXPECT_EQ(c.max_client_conn, 100);
    EXPECT_EQ(c.default_pool_size, 20);
    EXPECT_EQ(c.min_pool_size, 0);
    EXPECT_EQ(c.reserve_pool_size, 0);
    EXPECT_EQ(c.reserve_pool_timeout, 5s);
    EXPECT_EQ(c.max_db_connections, 0);
    EXPECT_EQ(c.max_user_connections, 0);
    EXPECT_FALSE(c.server_round_robin);
    EXPECT_TRUE(c.ignore_startup_parameters.empty());
    EXPECT_FALSE(c.disable_pqexec);
    EXPECT_FALSE(c.application_name_add_host);
    EXPECT_EQ(c.stats_period, 60);
    EXPECT_FALSE(c.syslog);
    EXPECT_EQ(c.syslog_ident, "pgbouncer");
    EXPECT_EQ(c.syslog_facility, "daemon");
    EXPECT_TRUE(c.log_connections);
    EXPECT_TRUE(c.log_disconnections);
    EXPECT_TRUE(c.log_pooler_errors);
    EXPECT_TRUE(c.log_stats);
    EXPECT_EQ(c.verbose, 0);
    EXPECT_TRUE(c.admin_users.empty());
    EXPECT_TRUE(c.stats_users.empty());
    EXPECT_EQ(c.server_reset_query, "DISCARD ALL");
    EXPECT_FALSE(c.server_reset_query_always);
    EXPECT_EQ(c.server_check_query, "<empty>");
    EXPECT_EQ(c.server_check_delay, 30s);
    EXPECT_FALSE(c.server_fast_close);
    EXPECT_EQ(c.server_lifetime, 3600s);
    EXPECT_EQ(c.server_idle_timeout, 600s);
    EXPECT_EQ(c.server_connect_timeout, 15s);
    EXPECT_EQ(c.server_login_retry, 15s);
    EXPECT_EQ(c.client_login_timeout, 60s);
    EXPECT_EQ(c.autodb_idle_timeout, 3600s);
    EXPECT_EQ(c.dns_max_ttl, 15s);
    EXPECT_EQ(c.dns_nxdomain_ttl, 15s);
    EXPECT_EQ(c.dns_zone_check_period, 0s);
    EXPECT_EQ(c.resolv_conf, "");
    EXPECT_EQ(c.query_timeout, 0s);
    EXPECT_EQ(c.query_wait_timeout, 120s);
    EXPECT_EQ(c.cancel_wait_timeout, 10s);
    EXPECT_EQ(c.client_idle_timeout, 0s);
    EXPECT_EQ(c.idle_transaction_timeout, 0s);
    EXPECT_EQ(c.suspend_timeout, 10s);
    EXPECT_EQ(c.pkt_buf, 4096);
    EXPECT_EQ(c.max_packet_size, 2147483647);
    EXPECT_EQ(c.listen_backlog, 128);
    EXPECT_EQ(c.sbuf_loopcnt, 5);
    EXPECT_EQ(c.so_reuseport, 0);
    EXPECT_EQ(c.tcp_defer_accept, 1);
    EXPECT_EQ(c.tcp_socket_buffer, 0);
    EXPECT_EQ(c.tcp_keepalive, 1);
    EXPECT_EQ(c.tcp_keepcnt, 0);
    EXPECT_EQ(c.tcp_keepidle, 0);
    EXPECT_EQ(c.tcp_keepintvl, 0);
    EXPECT_EQ(c.tcp_user_timeout, 0);
    EXPECT_EQ(c.client_tls_sslmode, "disable");
    EXPECT_EQ(c.client_tls_protocols, "secure");
    EXPECT_EQ(c.client_tls_ciphers, "fast");
    EXPECT_EQ(c.client_tls_ecdhcurve, "auto");
    EXPECT_EQ(c.client_tls_dheparams, "auto");
    EXPECT_EQ(c.server_tls_sslmode, "disable");
    EXPECT_EQ(c.server_tls_protocols, "secure");
    EXPECT_EQ(c.server_tls_ciphers, "fast");
    EXPECT_EQ(c.peer_id, 0);
    EXPECT_EQ(c.max_prepared_statements, 200);
    EXPECT_EQ(c.worker_threads, 0);
    EXPECT_EQ(c.http_listen, "");
}

// Every [pgbouncer] parameter PgBouncer 1.18 knows (plus the newer ones poolguard takes) is recognised: it
// either loads without an "unknown parameter" warning or is rejected for its value, never for its name.
TEST(ConfigLoader, EveryPgBouncerParameterIsKnown) {
    const char* names[] = {"logfile",
                           "pidfile",
                           "listen_addr",
                           "listen_port",
                           "unix_socket_dir",
                           "unix_socket_mode",
                           "unix_socket_group",
                           "user",
                           "pool_mode",
                           "max_client_conn",
                           "default_pool_size",
                           "min_pool_size",
                           "reserve_pool_size",
                           "reserve_pool_timeout",
                           "max_db_connections",
                           "max_user_connections",
                           "server_round_robin",
                           "ignore_startup_parameters",
                           "disable_pqexec",
                           "application_name_add_host",
                           "conffile",
                           "service_name",
                           "job_name",
                           "stats_period",
                           "auth_type",
                           "auth_file",
                           "auth_hba_file",
                           "auth_user",
                           "auth_query",
                           "auth_dbname",
                           "syslog",
                           "syslog_ident",
                           "syslog_facility",
                           "log_connections",
                           "log_disconnections",
                           "log_pooler_errors",
                           "log_stats",
                           "verbose",
                           "admin_users",
                           "stats_users",
                           "server_reset_query",
                           "server_reset_query_always",
                           "server_check_query",
                           "server_check_delay",
                           "server_fast_close",
                           "server_lifetime",
                           "server_idle_timeout",
                           "server_connect_timeout",
                           "server_login_retry",
                           "client_login_timeout",
                           "autodb_idle_timeout",
                           "dns_max_ttl",
                           "dns_nxdomain_ttl",
                           "dns_zone_check_period",
                           "resolv_conf",
                           "query_timeout",
                           "query_wait_timeout",
                           "cancel_wait_timeout",
                           "client_idle_timeout",
                           "idle_transaction_timeout",
                           "suspend_timeout",
                           "pkt_buf",
                           "max_packet_size",
                           "listen_backlog",
                           "sbuf_loopcnt",
                           "so_reuseport",
                           "tcp_defer_accept",
                           "tcp_socket_buffer",
                           "tcp_keepalive",
                           "tcp_keepcnt",
                           "tcp_keepidle",
                           "tcp_keepintvl",
                           "tcp_user_timeout",
                           "client_tls_sslmode",
                           "client_tls_key_file",
                           "client_tls_cert_file",
                           "client_tls_ca_file",
                           "client_tls_protocols",
                           "client_tls_ciphers",
                           "client_tls_ecdhcurve",
                           "client_tls_dheparams",
                           "server_tls_sslmode",
                           "server_tls_ca_file",
                           "server_tls_key_file",
                           "server_tls_cert_file",
                           "server_tls_protocols",
                           "server_tls_ciphers",
                           "peer_id",
                           "max_prepared_statements"};
    for (const char* name : names) {
        // auth_type=trust keeps the auth_file check out of the way; the tested line comes after it.
        auto result =
            parse_config(std::string("[pgbouncer]\nauth_type = trust\n") + name + " = 0\n", "pg.ini");
        if (result) {
            for (const auto& w : result->warnings) {
                EXPECT_EQ(w.message.find("unknown"), std::string::npos) << name << ": " << w.message;
            }
        } else {
            EXPECT_NE(
                result.error().message.find("pg.ini:3: invalid value '0' for " + std::string(name) + ":"),
                std::string::npos)
                << name << ": " << result.error().message;
        }
    }
}

TEST(ConfigLoader, DefaultAuthTypeIsMd5) {
    EXPECT_EQ(load_ok(kAuth).config.auth_type, AuthType::kMd5);
}

TEST(ConfigLoader, EveryTimeUnitForm) {
    struct Case {
        const char* value;
        Micros expected;
    };
    const Case cases[] = {
        {"120", 120s},    {"0.5", 500ms}, {"1.25", 1250ms}, {"750us", 750us},
        {"250ms", 250ms}, {"45s", 45s},   {"2min", 2min},   {"1h", 1h},
        {"2d", 48h},      {"0", 0us},     {"1.5h", 90min},  {"100 ms", 100ms},
    };
    for (const Case& c : cases) {
        LoadResult r = load_ok(std::string(kAuth) + "query_wait_timeout = " + c.value + "\n");
        EXPECT_EQ(r.config.query_wait_timeout, c.expected) << c.value;
    }
}

TEST(ConfigLoader, KeysAreCaseInsensitive) {
    const Config c = load_ok(std::string(kAuth) + "Max_Client_Conn = 7\nPOOL_MODE = Transaction\n").config;
    EXPECT_EQ(c.max_client_conn, 7);
    EXPECT_EQ(c.pool_mode, PoolMode::kTransaction);
}

TEST(ConfigLoader, LastAssignmentWins) {
    EXPECT_EQ(load_ok(std::string(kAuth) + "verbose = 1\nverbose = 3\n").config.verbose, 3);
}

TEST(ConfigLoader, ListenAddrStarAndEmptyUnixSocketDir) {
    const Config c = load_ok(std::string(kAuth) + "listen_addr = *\nunix_socket_dir =\n").config;
    EXPECT_EQ(c.listen_addr, (std::vector<std::string>{"*"}));
    EXPECT_EQ(c.unix_socket_dir, "");
}

TEST(ConfigLoader, BooleanWordsForIntegerSwitches) {
    const Config c =
        load_ok(std::string(kAuth) + "so_reuseport = on\ntcp_keepalive = off\ntcp_defer_accept = 45\n")
            .config;
    EXPECT_EQ(c.so_reuseport, 1);
    EXPECT_EQ(c.tcp_keepalive, 0);
    EXPECT_EQ(c.tcp_defer_accept, 45);
}

TEST(ConfigLoader, UnknownParameterIsAWarning) {
    LoadResult r = load_ok(std::string(kAuth) + "\nfoo = 1\n");
    ASSERT_EQ(r.warnings.size(), 1u) << all_warnings(r);
    EXPECT_EQ(r.warnings[0].file, "pg.ini");
    EXPECT_EQ(r.warnings[0].line, 4);
    EXPECT_EQ(r.warnings[0].message, "unknown parameter 'foo' in [pgbouncer]");
    EXPECT_EQ(format_warning(r.warnings[0]), "pg.ini:4: unknown parameter 'foo' in [pgbouncer]");
}

TEST(ConfigLoader, UnknownPoolguardParameterIsAWarningButKeptRaw) {
    LoadResult r = load_ok(std::string(kAuth) + "[poolguard]\nFuture_Option = 1\nworker_threads = 2\n");
    EXPECT_TRUE(has_warning(r, "unknown parameter 'future_option' in [poolguard]", 4)) << all_warnings(r);
    const RawEntry* raw = r.config.poolguard_option("future_option");
    ASSERT_NE(raw, nullptr);
    EXPECT_EQ(raw->value, "1");
    EXPECT_EQ(raw->line, 4);
    EXPECT_EQ(r.config.worker_threads, 2);
    EXPECT_EQ(r.config.poolguard_option("nope"), nullptr);
}

TEST(ConfigLoader, ParameterInTheWrongSectionGetsAHint) {
    LoadResult r = load_ok(std::string(kAuth) + "worker_threads = 2\n[poolguard]\nmax_client_conn = 5\n");
    EXPECT_TRUE(
        has_warning(r, "unknown parameter 'worker_threads' in [pgbouncer]; it belongs in [poolguard]"));
    EXPECT_TRUE(
        has_warning(r, "unknown parameter 'max_client_conn' in [poolguard]; it belongs in [pgbouncer]"));
    EXPECT_EQ(r.config.worker_threads, 0);
    EXPECT_EQ(r.config.max_client_conn, 100);
}

TEST(ConfigLoader, UnknownSectionIsAWarningAndKeptRaw) {
    LoadResult r = load_ok(std::string(kAuth) + "[routing]\nweb = application_name=web*, priority=0\n");
    EXPECT_TRUE(has_warning(r, "unknown section [routing]", 3)) << all_warnings(r);
    ASSERT_EQ(r.config.extra_sections["routing"].size(), 1u);
    EXPECT_EQ(r.config.extra_sections["routing"][0].key, "web");
    EXPECT_EQ(r.config.extra_sections["routing"][0].value, "application_name=web*, priority=0");
}

TEST(ConfigLoader, NotImplementedWarnsOnlyWhenNotDefault) {
    // Set to their defaults: no warning.
    LoadResult quiet =
        load_ok(std::string(kAuth) +
                "syslog = 0\nsyslog_ident = pgbouncer\ndns_max_ttl = 15\nuser =\n"
                "client_tls_sslmode = disable\nserver_tls_sslmode = prefer\nclient_tls_ciphers = fast\n"
                "peer_id = 0\nresolv_conf =\n");
    EXPECT_TRUE(quiet.warnings.empty()) << all_warnings(quiet);

    LoadResult loud = load_ok(std::string(kAuth) +
                              "sbuf_loopcnt = 7\n"                   // 3
                              "dns_max_ttl = 30\n"                   // 4
                              "pkt_buf = 8192\n"                     // 5
                              "dns_nxdomain_ttl = 30\n"              // 6
                              "resolv_conf = /etc/my-resolv.conf\n"  // 7
                              "dns_zone_check_period = 60\n"         // 8
                              "peer_id = 3\n");                      // 9: implemented (peering), no warning
    const char* expected[] = {
        "accepted, not implemented: sbuf_loopcnt", "accepted, not implemented: dns_max_ttl",
        "accepted, not implemented: pkt_buf",      "accepted, not implemented: dns_nxdomain_ttl",
        "accepted, not implemented: resolv_conf",  "accepted, not implemented: dns_zone_check_period"};
    for (int i = 0; i < 6; ++i)
        EXPECT_TRUE(has_warning(loud, expected[i], i + 3)) << expected[i];
    ASSERT_EQ(loud.warnings.size(), 6u) << all_warnings(loud);
    for (int i = 0; i < 6; ++i)
        EXPECT_EQ(loud.warnings[i].line, i + 3) << "warnings follow the file's order";
    EXPECT_EQ(loud.config.peer_id, 3);
}

TEST(ConfigLoader, ImplementedSettingsOfIssue13LoadQuietly) {
    LoadResult r = load_ok(std::string(kAuth) +
                           "syslog = 1\nsyslog_ident = myapp\nsyslog_facility = local3\n"
                           "unix_socket_group = postgres\nlog_stats = 0\ntcp_keepidle = 30\n");
    EXPECT_TRUE(r.warnings.empty()) << all_warnings(r);
    EXPECT_TRUE(r.config.syslog);
    EXPECT_EQ(r.config.syslog_facility, "local3");
    EXPECT_EQ(r.config.unix_socket_group, "postgres");
}

TEST(ConfigLoader, NotImplementedJudgesTheFinalValue) {
    LoadResult r = load_ok(std::string(kAuth) + "sbuf_loopcnt = 7\nsbuf_loopcnt = 5\n");
    EXPECT_TRUE(r.warnings.empty()) << all_warnings(r);
}

TEST(ConfigLoader, AuthTypeHbaLoadsQuietly) {
    LoadResult hba = load_ok(
        "[pgbouncer]\nauth_type = hba\nauth_hba_file = /etc/pgbouncer/hba.conf\n"
        "auth_ident_file = /etc/pgbouncer/ident.conf\n");
    EXPECT_TRUE(hba.warnings.empty()) << all_warnings(hba);
    EXPECT_EQ(hba.config.auth_ident_file, "/etc/pgbouncer/ident.conf");
    LoadResult md5 = load_ok(kAuth);
    EXPECT_TRUE(md5.warnings.empty()) << all_warnings(md5);
}

TEST(ConfigLoader, PeersSectionLoadsQuietly) {
    LoadResult r = load_ok(std::string(kAuth) + "peer_id = 1\n[peers]\n1 = host=/tmp/a\n2 = host=/tmp/b\n");
    EXPECT_TRUE(r.warnings.empty()) << all_warnings(r);
    ASSERT_EQ(r.config.peers.size(), 2u);
    EXPECT_EQ(r.config.peers[1].host, "/tmp/b");
    EXPECT_EQ(r.config.extra_sections["peers"].size(), 2u);
}

TEST(ConfigLoader, ConnstringQuoting) {
    const Config c = load_ok(std::string(kAuth) +
                             "[databases]\n"
                             "a = password='a b' user=x\n"
                             "b = password='it''s' connect_query='SELECT ''x'''\n"
                             "c = password=''\n")
                         .config;
    ASSERT_EQ(c.databases.size(), 3u);
    EXPECT_EQ(c.databases[0].password, "a b");
    EXPECT_EQ(c.databases[0].user, "x");
    EXPECT_EQ(c.databases[1].password, "it's");
    EXPECT_EQ(c.databases[1].connect_query, "SELECT 'x'");
    EXPECT_EQ(c.databases[2].password, "");
}

TEST(ConfigLoader, QuotedDatabaseNames) {
    const Config c =
        load_ok(std::string(kAuth) + "[databases]\n\"My DB\" = host=x\n\"a\"\"b\" = host=y\n").config;
    ASSERT_EQ(c.databases.size(), 2u);
    EXPECT_EQ(c.databases[0].name, "My DB");
    EXPECT_EQ(c.databases[0].dbname, "My DB");
    EXPECT_EQ(c.databases[1].name, "a\"b");
}

TEST(ConfigLoader, DatabaseNamesKeepTheirCase) {
    const Config c = load_ok(std::string(kAuth) + "[databases]\nMyApp = host=x\n").config;
    EXPECT_NE(c.find_database("MyApp"), nullptr);
    EXPECT_EQ(c.find_database("myapp"), nullptr);
}

TEST(ConfigLoader, ReservePoolSizeIsAnAliasOfReservePool) {
    const Config c = load_ok(std::string(kAuth) + "[databases]\na = reserve_pool_size=7\n").config;
    EXPECT_EQ(c.databases[0].reserve_pool, 7);
}

TEST(ConfigLoader, RedefinedDatabaseAndUserReplaceWithWarning) {
    LoadResult r = load_ok(std::string(kAuth) +
                           "[databases]\na = host=one\nb = host=two\na = host=three\n"
                           "[users]\nu = pool_mode=session\nu = pool_mode=statement\n");
    ASSERT_EQ(r.config.databases.size(), 2u);
    EXPECT_EQ(r.config.databases[0].name, "a");
    EXPECT_EQ(r.config.databases[0].host, "three");
    EXPECT_EQ(r.config.databases[0].line, 6);
    EXPECT_TRUE(has_warning(r, "database 'a' is defined again; the definition at pg.ini:4 is replaced", 6));
    ASSERT_EQ(r.config.users.size(), 1u);
    EXPECT_EQ(r.config.users[0].pool_mode, PoolMode::kStatement);
    EXPECT_TRUE(has_warning(r, "user 'u' is defined again", 9)) << all_warnings(r);
}

TEST(ConfigLoader, UsersSection) {
    const Config c = load_ok(std::string(kAuth) +
                             "[users]\n"
                             "alice = pool_mode=transaction max_user_connections=3\n"
                             "bob =\n"
                             "\"carol smith\" = max_user_connections=1\n")
                         .config;
    ASSERT_EQ(c.users.size(), 3u);
    EXPECT_EQ(c.users[0].pool_mode, PoolMode::kTransaction);
    EXPECT_EQ(c.users[0].max_user_connections, 3);
    EXPECT_EQ(c.users[0].line, 4);
    EXPECT_FALSE(c.users[1].pool_mode);
    EXPECT_EQ(c.users[2].name, "carol smith");
    ASSERT_NE(c.find_user("alice"), nullptr);
    EXPECT_EQ(c.find_user("alice")->max_user_connections, 3);
    EXPECT_EQ(c.find_user("dave"), nullptr);
}

TEST(ConfigLoader, StarDatabaseIsTheFallback) {
    const Config c =
        load_ok(std::string(kAuth) + "[databases]\napp = host=a\n* = host=fallback port=6000\n").config;
    ASSERT_NE(c.find_database("app"), nullptr);
    EXPECT_EQ(c.find_database("app")->host, "a");
    const DatabaseConfig* other = c.find_database("whatever");
    ASSERT_NE(other, nullptr);
    EXPECT_EQ(other->name, "*");
    EXPECT_EQ(other->host, "fallback");

    auto resolved = c.resolve_database("sales");
    ASSERT_TRUE(resolved);
    EXPECT_EQ(resolved->name, "sales");
    EXPECT_EQ(resolved->dbname, "sales");
    EXPECT_EQ(resolved->host, "fallback");
    EXPECT_EQ(resolved->port, 6000);
    EXPECT_EQ(c.resolve_database("app")->dbname, "app");
}

TEST(ConfigLoader, StarWithFixedDbname) {
    const Config c = load_ok(std::string(kAuth) + "[databases]\n* = host=x dbname=common\n").config;
    EXPECT_EQ(c.resolve_database("anything")->dbname, "common");
}

TEST(ConfigLoader, NoFallbackMeansNoDatabase) {
    const Config c = load_ok(std::string(kAuth) + "[databases]\napp = host=a\n").config;
    EXPECT_EQ(c.find_database("other"), nullptr);
    EXPECT_FALSE(c.resolve_database("other"));
}

TEST(ConfigLoader, EffectiveSettingsResolution) {
    const Config c =
        load_ok(std::string(kAuth) +
                "pool_mode = session\n"
                "default_pool_size = 20\n"
                "min_pool_size = 1\n"
                "reserve_pool_size = 2\n"
                "max_db_connections = 50\n"
                "max_user_connections = 30\n"
                "[databases]\n"
                "plain = host=a\n"
                "tuned = host=b pool_size=40 min_pool_size=4 reserve_pool=6 pool_mode=transaction "
                "max_db_connections=10\n"
                "[users]\n"
                "stmt = pool_mode=statement max_user_connections=5\n"
                "nomode = max_user_connections=0\n")
            .config;
    const DatabaseConfig& plain = *c.find_database("plain");
    const DatabaseConfig& tuned = *c.find_database("tuned");
    const UserConfig* stmt = c.find_user("stmt");
    const UserConfig* nomode = c.find_user("nomode");

    EXPECT_EQ(c.effective_pool_mode(plain, nullptr), PoolMode::kSession);
    EXPECT_EQ(c.effective_pool_mode(tuned, nullptr), PoolMode::kTransaction);
    EXPECT_EQ(c.effective_pool_mode(tuned, nomode), PoolMode::kTransaction);
    EXPECT_EQ(c.effective_pool_mode(tuned, stmt), PoolMode::kStatement);  // user beats database
    EXPECT_EQ(c.effective_pool_mode(plain, stmt), PoolMode::kStatement);

    EXPECT_EQ(c.effective_pool_size(plain), 20);
    EXPECT_EQ(c.effective_pool_size(tuned), 40);
    EXPECT_EQ(c.effective_min_pool_size(plain), 1);
    EXPECT_EQ(c.effective_min_pool_size(tuned), 4);
    EXPECT_EQ(c.effective_reserve_pool_size(plain), 2);
    EXPECT_EQ(c.effective_reserve_pool_size(tuned), 6);
    EXPECT_EQ(c.effective_max_db_connections(plain), 50);
    EXPECT_EQ(c.effective_max_db_connections(tuned), 10);
    EXPECT_EQ(c.effective_max_user_connections(nullptr), 30);
    EXPECT_EQ(c.effective_max_user_connections(nomode), 30);
    EXPECT_EQ(c.effective_max_user_connections(stmt), 5);
}

TEST(ConfigLoader, ExplicitZeroPoolSizeOverridesDefault) {
    const Config c = load_ok(std::string(kAuth) + "[databases]\nparked = pool_size=0\n").config;
    EXPECT_EQ(c.effective_pool_size(*c.find_database("parked")), 0);
}

TEST(ConfigLoader, UnlimitedByDefault) {
    const Config c = load_ok(std::string(kAuth) + "[databases]\na =\n").config;
    EXPECT_EQ(c.effective_max_db_connections(c.databases[0]), 0);
    EXPECT_EQ(c.effective_max_user_connections(nullptr), 0);
}

TEST(ConfigLoader, EmptyDatabasesSectionIsAllowed) {
    const Config c = load_ok(std::string("[databases]\n") + kAuth).config;
    EXPECT_TRUE(c.databases.empty());
}

TEST(ConfigLoader, AuthUserSatisfiesPasswordSource) {
    EXPECT_TRUE(parse_config("[pgbouncer]\nauth_user = pgb\n", "x.ini"));
    EXPECT_TRUE(parse_config("[databases]\na = auth_user=pgb\n", "x.ini"));
    EXPECT_TRUE(parse_config("[pgbouncer]\nauth_type = any\n", "x.ini"));
}

TEST(ConfigLoader, AuthDbnameMayPointAtFallback) {
    EXPECT_TRUE(
        parse_config("[databases]\n* = host=x\n[pgbouncer]\nauth_user=a\nauth_dbname = authdb\n", "x.ini"));
}

TEST(ConfigLoader, LoadFileWithInclude) {
    ScratchDir dir;
    dir.write("conf.d/databases.ini", "[databases]\napp = host=db port=5433\n");
    dir.write("conf.d/users.ini", "[users]\nalice = pool_mode=transaction\n");
    std::string top = dir.write("pgbouncer.ini",
                                "%include conf.d/databases.ini\n"
                                "%include conf.d/users.ini\n"
                                "[pgbouncer]\n"
                                "auth_type = trust\n"
                                "listen_port = 7000\n"
                                "bogus = 1\n");
    auto result = load_config(top);
    ASSERT_TRUE(result) << result.error().message;
    const Config& c = result->config;
    EXPECT_EQ(c.file, top);
    EXPECT_EQ(c.conffile, top);
    ASSERT_EQ(c.databases.size(), 1u);
    EXPECT_EQ(c.databases[0].port, 5433);
    ASSERT_EQ(c.users.size(), 1u);
    EXPECT_EQ(c.listen_port, 7000);
    ASSERT_EQ(result->warnings.size(), 1u);
    EXPECT_EQ(result->warnings[0].file, top);
    EXPECT_EQ(result->warnings[0].line, 6);
}

TEST(ConfigLoader, WarningInIncludedFileNamesThatFile) {
    ScratchDir dir;
    std::string part = dir.write("part.ini", "\nnope = 1\n");
    std::string top = dir.write("main.ini", "[pgbouncer]\nauth_type = trust\n%include part.ini\n");
    auto result = load_config(top);
    ASSERT_TRUE(result) << result.error().message;
    ASSERT_EQ(result->warnings.size(), 1u);
    EXPECT_EQ(format_warning(result->warnings[0]), part + ":2: unknown parameter 'nope' in [pgbouncer]");
}

TEST(ConfigLoader, JobNameAndServiceNameAreOneSetting) {
    const Config a = load_ok(std::string(kAuth) + "job_name = pool1\n").config;
    EXPECT_EQ(a.service_name, "pool1");
    EXPECT_EQ(a.job_name, "pool1");
    const Config b = load_ok(std::string(kAuth) + "service_name = pool2\n").config;
    EXPECT_EQ(b.service_name, "pool2");
    EXPECT_EQ(b.job_name, "pool2");
}

TEST(ConfigLoader, ConffileCanBeSet) {
    EXPECT_EQ(load_ok(std::string(kAuth) + "conffile = /etc/other.ini\n").config.conffile, "/etc/other.ini");
}

TEST(ConfigLoader, RawPgbouncerValueKeepsSpecialCharacters) {
    const Config c =
        load_ok(std::string(kAuth) + "auth_query = SELECT p FROM t WHERE u=$1 -- ; # ok\n").config;
    EXPECT_EQ(c.auth_query, "SELECT p FROM t WHERE u=$1 -- ; # ok");
}

}  // namespace
}  // namespace poolguard::config

namespace poolguard::config {
namespace {

// Adaptive pool size (issue 6 part 4): a global default in [poolguard], per database in the connection
// string, Gradient2 parameters with their ranges.
TEST(ConfigLoader, AdaptivePoolGlobalAndPerDatabase) {
    const char* text =
        "[databases]\n"
        "a = host=h pool_size=16 adaptive_pool=on\n"
        "b = host=h adaptive_pool=off\n"
        "c = host=h\n"
        "[pgbouncer]\nauth_type = trust\n"
        "[poolguard]\nadaptive_pool = on\nadaptive_smoothing = 0.5\nadaptive_rtt_tolerance = 2\n"
        "adaptive_queue_size = 1.5\nadaptive_window = 500ms\nadaptive_window_samples = 20\n";
    auto r = parse_config(text, "pg.ini");
    ASSERT_TRUE(r) << r.error().message;
    const Config& c = r->config;
    EXPECT_TRUE(c.adaptive_pool);
    EXPECT_DOUBLE_EQ(c.adaptive_smoothing, 0.5);
    EXPECT_DOUBLE_EQ(c.adaptive_rtt_tolerance, 2.0);
    EXPECT_DOUBLE_EQ(c.adaptive_queue_size, 1.5);
    EXPECT_EQ(c.adaptive_window, 500ms);
    EXPECT_EQ(c.adaptive_window_samples, 20);
    EXPECT_TRUE(c.effective_adaptive_pool(*c.find_database("a")));
    EXPECT_FALSE(c.effective_adaptive_pool(*c.find_database("b")));
    EXPECT_TRUE(c.effective_adaptive_pool(*c.find_database("c")));  // the [poolguard] default
    EXPECT_EQ(c.effective_pool_size(*c.find_database("a")), 16);
    // Off by default.
    auto plain = parse_config("[databases]\nc = host=h\n[pgbouncer]\nauth_type = trust\n", "pg.ini");
    ASSERT_TRUE(plain);
    EXPECT_FALSE(plain->config.effective_adaptive_pool(*plain->config.find_database("c")));
    EXPECT_DOUBLE_EQ(plain->config.adaptive_rtt_tolerance, 1.5);
}

TEST(ConfigLoader, AdaptivePoolBadValuesAreOneClearLine) {
    auto bad_db = parse_config("[databases]\na = host=h adaptive_pool=maybe\n", "pg.ini");
    ASSERT_FALSE(bad_db);
    EXPECT_NE(bad_db.error().message.find("adaptive_pool"), std::string::npos) << bad_db.error().message;
    auto range = parse_config("[poolguard]\nadaptive_smoothing = 1.5\n", "pg.ini");
    ASSERT_FALSE(range);
    EXPECT_NE(range.error().message.find("must be between 0.01 and 1"), std::string::npos)
        << range.error().message;
    auto word = parse_config("[poolguard]\nadaptive_rtt_tolerance = lots\n", "pg.ini");
    ASSERT_FALSE(word);
    EXPECT_NE(word.error().message.find("expected a number"), std::string::npos) << word.error().message;
}

}  // namespace
}  // namespace poolguard::config
