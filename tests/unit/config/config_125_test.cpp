// Tests that a PgBouncer 1.25 configuration loads unchanged: every parameter of 1.25's doc/config.md, the
// [databases] and [users] keys of 1.19-1.25, host lists, load_balance_hosts, the effective per-database and
// per-user values, and the settings refused until implemented.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "config/config.h"
#include "config/host_list.h"
#include "config/tracked_parameters.h"

namespace poolguard::config {
namespace {

using namespace std::chrono_literals;

// Every [pgbouncer] parameter of PgBouncer 1.25.2's doc/config.md, each set to a valid value that differs
// from poolguard's default where that is harmless, in the order of the document.
constexpr const char* kGlobals125 = R"([pgbouncer]
logfile = /tmp/pgb125.log
pidfile = /tmp/pgb125.pid
listen_addr = 127.0.0.1
listen_port = 6433
unix_socket_dir = /tmp
unix_socket_mode = 0777
unix_socket_group = postgres
user = postgres
pool_mode = transaction
max_client_conn = 500
default_pool_size = 10
min_pool_size = 1
reserve_pool_size = 2
reserve_pool_timeout = 3
max_db_connections = 40
max_db_client_connections = 90
max_user_connections = 30
max_user_client_connections = 80
server_round_robin = 1
track_extra_parameters = search_path, default_transaction_read_only
ignore_startup_parameters = extra_float_digits, options
peer_id = 1
disable_pqexec = 0
application_name_add_host = 1
conffile = /tmp/pgb125.ini
service_name = pgbouncer
job_name = pgbouncer
stats_period = 30
max_prepared_statements = 100
scram_iterations = 8192
auth_type = md5
auth_hba_file = /etc/pgbouncer/hba.conf
auth_ident_file = /etc/pgbouncer/ident.conf
auth_file = /etc/pgbouncer/userlist.txt
auth_user = pgbouncer_auth
auth_query = SELECT usename, passwd FROM pg_shadow WHERE usename=$1
auth_dbname = postgres
auth_ldap_options = ldapurl="ldap://127.0.0.1:12345/dc=example,dc=net?uid?sub"
syslog = 0
syslog_ident = pgbouncer
syslog_facility = daemon
log_connections = 1
log_disconnections = 1
log_pooler_errors = 1
log_stats = 1
verbose = 0
admin_users = postgres
stats_users = stats
server_reset_query = DISCARD ALL
server_reset_query_always = 0
server_check_delay = 30
server_check_query = <empty>
server_fast_close = 0
server_lifetime = 1800
server_idle_timeout = 600
server_connect_timeout = 15
server_login_retry = 1
client_login_timeout = 60
autodb_idle_timeout = 3600
dns_max_ttl = 15
dns_nxdomain_ttl = 15
dns_zone_check_period = 0
resolv_conf = /etc/resolv.conf
query_wait_notify = 3
client_tls_sslmode = disable
client_tls_key_file = /etc/pgbouncer/client.key
client_tls_cert_file = /etc/pgbouncer/client.crt
client_tls_ca_file = /etc/pgbouncer/ca.crt
client_tls_protocols = secure
client_tls_ciphers = fast
client_tls13_ciphers = TLS_AES_256_GCM_SHA384
client_tls_ecdhcurve = auto
client_tls_dheparams = auto
server_tls_sslmode = disable
server_tls_ca_file = /etc/pgbouncer/ca.crt
server_tls_key_file = /etc/pgbouncer/server.key
server_tls_cert_file = /etc/pgbouncer/server.crt
server_tls_protocols = secure
server_tls_ciphers = fast
server_tls13_ciphers = TLS_AES_256_GCM_SHA384
query_timeout = 0
query_wait_timeout = 120
cancel_wait_timeout = 10
client_idle_timeout = 0
idle_transaction_timeout = 0
transaction_timeout = 3
suspend_timeout = 10
pkt_buf = 4096
max_packet_size = 2147483647
listen_backlog = 128
sbuf_loopcnt = 5
so_reuseport = 0
tcp_defer_accept = 1
tcp_socket_buffer = 0
tcp_keepalive = 1
tcp_keepcnt = 0
tcp_keepidle = 0
tcp_keepintvl = 0
tcp_user_timeout = 0
)";

// Every [databases] key of 1.25 (doc/config.md "Section [databases]"), every [users] key, and [peers].
constexpr const char* kSections125 = R"([databases]
postgres = host=127.0.0.1 port=5432 dbname=postgres server_lifetime=30 max_db_client_connections=50 auth_dbname=postgres
full = dbname=app host=db1,db2:5433 port=5432 user=appuser password=secret auth_user=authu auth_query='SELECT usename, passwd FROM pg_shadow WHERE usename=$1' auth_dbname=postgres pool_size=7 min_pool_size=1 reserve_pool_size=2 connect_query='select 1' pool_mode=session load_balance_hosts=disable max_db_connections=20 max_db_client_connections=60 server_lifetime=120 client_encoding=UTF8 datestyle=ISO timezone=UTC
legacy = host=127.0.0.1 reserve_pool=3
[users]
app = pool_size=7 reserve_pool_size=1 max_user_connections=9 max_user_client_connections=40 pool_mode=transaction query_timeout=30 idle_transaction_timeout=30 transaction_timeout=60 client_idle_timeout=300
[peers]
1 = host=/tmp/pgbouncer-1
2 = host=127.0.0.2 port=6432 pool_size=5
)";

// Where PgBouncer 1.25.2's documentation lives on a development machine (absent elsewhere: skipped).
const char* kDoc125 = "/var/tmp/poolguard-anchors/pgbouncer-1.25.2/doc/config.md";

LoadResult load_ok(const std::string& text) {
    auto result = parse_config(text, "pgbouncer.ini");
    EXPECT_TRUE(result) << (result ? "" : result.error().message);
    return result ? std::move(*result) : LoadResult{};
}

std::string warnings_of(const LoadResult& r) {
    std::string out;
    for (const auto& w : r.warnings)
        out += format_warning(w) + "\n";
    return out;
}

TEST(Config125, EveryParameterOfTheDocumentLoads) {
    LoadResult r = load_ok(std::string(kGlobals125) + kSections125);
    for (const auto& w : r.warnings) {
        EXPECT_EQ(w.message.find("unknown parameter"), std::string::npos) << format_warning(w);
        EXPECT_EQ(w.message.find("unknown section"), std::string::npos) << format_warning(w);
    }
    // Unimplemented settings are named in their warning.
    EXPECT_EQ(warnings_of(r).find("[peers]"), std::string::npos) << warnings_of(r);  // implemented
    EXPECT_NE(warnings_of(r).find("accepted, not implemented: auth_ldap_options"), std::string::npos);
    const Config& c = r.config;
    EXPECT_EQ(c.transaction_timeout, 3s);
    EXPECT_EQ(c.query_wait_notify, 3s);
    EXPECT_EQ(c.track_extra_parameters,
              (std::vector<std::string>{"search_path", "default_transaction_read_only"}));
    EXPECT_EQ(c.scram_iterations, 8192);
    EXPECT_EQ(c.max_db_client_connections, 90);
    EXPECT_EQ(c.max_user_client_connections, 80);
    EXPECT_EQ(c.server_lifetime, 1800s);
    EXPECT_EQ(c.server_login_retry, 1s);
    EXPECT_EQ(c.server_check_query, "<empty>");
    EXPECT_EQ(c.auth_ident_file, "/etc/pgbouncer/ident.conf");
}

// The parameter list above is the document's: every "### name" of the [pgbouncer] part is set in it.
TEST(Config125, TheListCoversTheDocument) {
    std::ifstream doc(kDoc125);
    if (!doc) GTEST_SKIP() << kDoc125 << " is not on this machine";
    std::set<std::string> documented;
    std::string line;
    const std::regex heading("^### ([a-z0-9_]+)\\s*$");
    while (std::getline(doc, line)) {
        if (line.starts_with("## Section [databases]")) break;  // the per-database keys follow
        std::smatch m;
        if (std::regex_match(line, m, heading)) documented.insert(m[1]);
    }
    ASSERT_GT(documented.size(), 90u);
    const std::string globals = kGlobals125;
    for (const std::string& name : documented)
        EXPECT_NE(globals.find("\n" + name + " = "), std::string::npos)
            << name << " is documented but not tested";
    // And poolguard's SHOW CONFIG lists each of them.
    std::set<std::string> shown;
    for (const auto& p : describe_parameters(Config{}))
        shown.insert(p.key);
    for (const std::string& name : documented)
        EXPECT_TRUE(shown.contains(name)) << name << " is missing from SHOW CONFIG";
}

TEST(Config125, DatabaseKeys) {
    LoadResult r =
        load_ok(std::string("[pgbouncer]\nauth_file = /u\nserver_lifetime = 1800\n") + kSections125);
    const Config& c = r.config;
    const DatabaseConfig* full = c.find_database("full");
    ASSERT_NE(full, nullptr);
    EXPECT_EQ(full->host, "db1,db2:5433");
    EXPECT_FALSE(full->load_balance_round_robin);
    EXPECT_EQ(full->max_db_client_connections, 60);
    EXPECT_EQ(full->server_lifetime, 120s);
    EXPECT_EQ(full->auth_query, "SELECT usename, passwd FROM pg_shadow WHERE usename=$1");
    EXPECT_EQ(full->reserve_pool, 2);
    EXPECT_EQ(c.effective_server_lifetime(*full), 120s);
    EXPECT_EQ(c.effective_max_db_client_connections(*full), 60);
    const DatabaseConfig* legacy = c.find_database("legacy");
    ASSERT_NE(legacy, nullptr);
    EXPECT_TRUE(legacy->load_balance_round_robin);
    EXPECT_EQ(legacy->reserve_pool, 3);
    EXPECT_EQ(c.effective_server_lifetime(*legacy), 1800s);
    EXPECT_EQ(c.effective_max_db_client_connections(*legacy), 0);
}

TEST(Config125, UserKeysAndPrecedence) {
    LoadResult r =
        load_ok(std::string("[pgbouncer]\nauth_file = /u\ndefault_pool_size = 5\nquery_timeout = 10\n"
                            "max_user_client_connections = 80\ntransaction_timeout = 4\n") +
                kSections125);
    const Config& c = r.config;
    const UserConfig* app = c.find_user("app");
    ASSERT_NE(app, nullptr);
    const DatabaseConfig* full = c.find_database("full");
    const DatabaseConfig* legacy = c.find_database("legacy");
    // [users] pool_size wins over the database's and the default.
    EXPECT_EQ(c.effective_pool_size(*full, app), 7);
    EXPECT_EQ(c.effective_pool_size(*legacy, nullptr), 5);
    EXPECT_EQ(c.effective_pool_size(*full, nullptr), 7);
    EXPECT_EQ(c.effective_reserve_pool_size(*full, app), 1);
    EXPECT_EQ(c.effective_reserve_pool_size(*full, nullptr), 2);
    EXPECT_EQ(c.effective_max_user_client_connections(app), 40);
    EXPECT_EQ(c.effective_max_user_client_connections(nullptr), 80);
    EXPECT_EQ(c.effective_query_timeout(app), 30s);
    EXPECT_EQ(c.effective_query_timeout(nullptr), 10s);
    EXPECT_EQ(c.effective_idle_transaction_timeout(app), 30s);
    EXPECT_EQ(c.effective_transaction_timeout(app), 60s);
    EXPECT_EQ(c.effective_transaction_timeout(nullptr), 4s);
    EXPECT_EQ(c.effective_client_idle_timeout(app), 300s);
    EXPECT_EQ(c.effective_client_idle_timeout(nullptr), 0s);
    EXPECT_EQ(c.effective_pool_mode(*full, app), PoolMode::kTransaction);
    // A [users] timeout of 0 means "not set": the global value applies (PgBouncer 1.25.2).
    LoadResult zero =
        load_ok("[pgbouncer]\nauth_file = /u\ntransaction_timeout = 4\n[users]\nu = transaction_timeout=0\n");
    EXPECT_EQ(zero.config.effective_transaction_timeout(zero.config.find_user("u")), 4s);
}

TEST(Config125, BadUserAndDatabaseValuesNameTheKey) {
    auto bad_user =
        parse_config("[pgbouncer]\nauth_file = /u\n[users]\napp = transaction_timeout=soon\n", "p.ini");
    ASSERT_FALSE(bad_user);
    EXPECT_NE(bad_user.error().message.find("transaction_timeout in user 'app'"), std::string::npos)
        << bad_user.error().message;
    auto unknown_user = parse_config("[pgbouncer]\nauth_file = /u\n[users]\napp = pool_sise=3\n", "p.ini");
    ASSERT_FALSE(unknown_user);
    EXPECT_NE(unknown_user.error().message.find("unknown parameter 'pool_sise'"), std::string::npos);
    auto bad_lb = parse_config(
        "[pgbouncer]\nauth_file = /u\n[databases]\nd = host=a,b load_balance_hosts=random\n", "p.ini");
    ASSERT_FALSE(bad_lb);
    EXPECT_NE(bad_lb.error().message.find("expected round-robin or disable"), std::string::npos);
    auto bad_host = parse_config("[pgbouncer]\nauth_file = /u\n[databases]\nd = host=a,,b\n", "p.ini");
    ASSERT_FALSE(bad_host);
    EXPECT_NE(bad_host.error().message.find("empty entry in the host list"), std::string::npos);
    auto bad_ports =
        parse_config("[pgbouncer]\nauth_file = /u\n[databases]\nd = host=a,b,c port=1,2\n", "p.ini");
    ASSERT_FALSE(bad_ports);
    EXPECT_NE(bad_ports.error().message.find("2 ports for 3 hosts"), std::string::npos)
        << bad_ports.error().message;
}

TEST(Config125, UntrackableExtraParameterIsNamed) {
    LoadResult r = load_ok("[pgbouncer]\nauth_file = /u\ntrack_extra_parameters = IntervalStyle, work_mem\n");
    ASSERT_EQ(r.warnings.size(), 1u) << warnings_of(r);
    EXPECT_EQ(r.warnings[0].message, "accepted, not implemented: tracking work_mem (track_extra_parameters)");
    EXPECT_EQ(r.warnings[0].line, 3);
    EXPECT_TRUE(tracks_parameter(r.config, "intervalstyle"));
    EXPECT_FALSE(tracks_parameter(r.config, "default_transaction_read_only"));
    EXPECT_TRUE(tracks_parameter(r.config, "timezone"));
}

TEST(Config125, PeersAreValidated) {
    LoadResult r = load_ok(std::string("[pgbouncer]\nauth_file = /u\n") + kSections125);
    ASSERT_EQ(r.config.peers.size(), 2u);
    EXPECT_EQ(r.config.peers[0].peer_id, 1);
    EXPECT_EQ(r.config.peers[0].host, "/tmp/pgbouncer-1");
    EXPECT_EQ(r.config.peers[0].port, 6432);
    EXPECT_FALSE(r.config.peers[0].pool_size);
    EXPECT_EQ(r.config.peers[1].host, "127.0.0.2");
    EXPECT_EQ(r.config.peers[1].pool_size, 5);
    auto bad_id = parse_config("[pgbouncer]\nauth_file = /u\n[peers]\n0 = host=a\n", "p.ini");
    ASSERT_FALSE(bad_id);
    EXPECT_NE(bad_id.error().message.find("p.ini:4: invalid peer id '0'"), std::string::npos)
        << bad_id.error().message;
    auto bad_key = parse_config("[pgbouncer]\nauth_file = /u\n[peers]\n7 = host=a dbname=x\n", "p.ini");
    ASSERT_FALSE(bad_key);
    EXPECT_NE(bad_key.error().message.find("unknown parameter 'dbname' for peer 7"), std::string::npos);
}

TEST(Config125, Defaults) {
    Config c;
    EXPECT_EQ(c.track_extra_parameters, std::vector<std::string>{"IntervalStyle"});
    EXPECT_EQ(c.scram_iterations, 4096);
    EXPECT_EQ(c.transaction_timeout, 0s);
    EXPECT_EQ(c.max_db_client_connections, 0);
    EXPECT_EQ(c.max_user_client_connections, 0);
    EXPECT_EQ(c.server_check_query, "<empty>");
}

TEST(HostList, Forms) {
    using V = std::vector<HostEntry>;
    EXPECT_EQ(parse_host_list("", "", 5432), (V{{"", 5432}}));
    EXPECT_EQ(parse_host_list("a", "", 6000), (V{{"a", 6000}}));
    EXPECT_EQ(parse_host_list("a, b:5433,[::1]:5434,::1,/tmp/sock", "", 5432),
              (V{{"a", 5432}, {"b", 5433}, {"::1", 5434}, {"::1", 5432}, {"/tmp/sock", 5432}}));
    EXPECT_EQ(parse_host_list("a,b", "5001,5002", 5432), (V{{"a", 5001}, {"b", 5002}}));
    EXPECT_EQ(parse_host_list("a,b", "5001", 5432), (V{{"a", 5001}, {"b", 5001}}));
    EXPECT_EQ(parse_host_list("a:7000,b", "5001,5002", 5432), (V{{"a", 7000}, {"b", 5002}}));
    EXPECT_FALSE(parse_host_list("a:0", "", 5432));
    EXPECT_FALSE(parse_host_list("a:x", "", 5432));
    EXPECT_FALSE(parse_host_list("[::1", "", 5432));
    EXPECT_FALSE(parse_host_list(":5432", "", 5432));
    EXPECT_TRUE(*parse_load_balance_hosts("Round-Robin"));
    EXPECT_FALSE(*parse_load_balance_hosts("disable"));
    EXPECT_FALSE(parse_load_balance_hosts("random"));
}

}  // namespace
}  // namespace poolguard::config
