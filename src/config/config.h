// Owns the in-memory configuration: pgbouncer.ini-compatible settings plus poolguard's own section.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "config/classes.h"

namespace poolguard::config {

enum class PoolMode { kSession, kTransaction, kStatement };
enum class AuthType { kTrust, kPlain, kMd5, kScramSha256, kAny, kHba, kCert };

const char* to_string(PoolMode mode);
const char* to_string(AuthType type);

// Durations are kept in microseconds, as PgBouncer does; 0 means "disabled" where PgBouncer says so.
using Micros = std::chrono::microseconds;

// One entry of [databases]: `name = host=... port=... dbname=... user=... password=... pool_size=...`.
struct DatabaseConfig {
    std::string name;  // the name clients connect to
    std::string host;  // empty = Unix socket in unix_socket_dir (PgBouncer's behaviour); may be a comma list
    int port = 5432;
    std::string port_list;        // "port=5432,5433": one port per host of a host list (else `port`)
    std::string dbname;           // server-side database name; defaults to `name` ("*": empty = client's)
    std::string user;             // forced server user (force_user); empty = client's user
    std::string password;         // password for `user`
    std::string auth_user;        // per-database auth_user (issue 3)
    std::string auth_query;       // per-database auth_query; empty = the global one
    std::string auth_dbname;      // per-database auth_dbname (issue 3)
    std::string client_encoding;  // startup defaults sent to the server
    std::string datestyle;
    std::string timezone;
    std::string application_name;
    std::string connect_query;     // issue 3
    std::optional<int> pool_size;  // overrides default_pool_size
    std::optional<int> min_pool_size;
    std::optional<int> reserve_pool;  // overrides reserve_pool_size (key reserve_pool or reserve_pool_size)
    std::optional<PoolMode> pool_mode;
    std::optional<bool> adaptive_pool;  // overrides [poolguard] adaptive_pool (issue 6 part 4)
    int max_db_connections = 0;         // 0 = unlimited (falls back to the global max_db_connections)
    // PgBouncer 1.19-1.25 per-database settings (config/host_list.h for the host list itself).
    int max_db_client_connections = 0;      // 0 = the global max_db_client_connections
    std::optional<Micros> server_lifetime;  // overrides the global server_lifetime
    bool load_balance_round_robin = true;   // load_balance_hosts: round-robin (default) | disable
    int line = 0;                           // line in the file where it was defined, for messages
};

// One entry of [users]: `name = pool_mode=... max_user_connections=...`.
struct UserConfig {
    std::string name;
    std::optional<PoolMode> pool_mode;
    int max_user_connections = 0;  // 0 = global max_user_connections
    // PgBouncer 1.22-1.25 per-user settings; unset = the database's or the global value.
    std::optional<int> pool_size;
    std::optional<int> reserve_pool_size;
    int max_user_client_connections = 0;  // 0 = global max_user_client_connections
    std::optional<Micros> query_timeout;
    std::optional<Micros> idle_transaction_timeout;
    std::optional<Micros> transaction_timeout;
    std::optional<Micros> client_idle_timeout;
    int line = 0;  // line in the file where it was defined, for messages
};

// One entry of [peers] (PgBouncer 1.19+): `peer_id = host=... port=... pool_size=...`.
struct PeerConfig {
    int peer_id = 0;   // 1..16383
    std::string host;  // address, name, or Unix socket directory
    int port = 6432;
    std::optional<int> pool_size;  // cancel requests in flight to the peer; default_pool_size when unset
    int line = 0;
};

// A line kept verbatim for a component that interprets it itself ([poolguard] keys, unknown sections).
struct RawEntry {
    std::string key;  // lowercased in [poolguard]; as written elsewhere
    std::string value;
    std::string file;
    int line = 0;
};

struct Config {
    std::string file;  // path the configuration was loaded from

    std::vector<DatabaseConfig> databases;  // in file order; "*" is the fallback (autodb) entry
    std::vector<UserConfig> users;
    std::vector<PeerConfig> peers;  // [peers]: where cancel requests for other peers' clients go

    // [pgbouncer] — names, defaults and units follow PgBouncer 1.18.
    std::string logfile;
    std::string pidfile;
    std::vector<std::string> listen_addr;  // empty = no TCP listener; "*" = all addresses
    int listen_port = 6432;
    std::string unix_socket_dir = "/tmp";  // empty = no Unix socket
    int unix_socket_mode = 0777;
    std::string unix_socket_group;
    std::string user;  // drop privileges (accepted, not used)
    int peer_id = 0;   // PgBouncer peering: cancel keys carry it; others' cancels go to [peers]

    AuthType auth_type = AuthType::kMd5;
    std::string auth_file;
    std::string auth_hba_file;
    std::string auth_ident_file;  // user name maps for peer lines of auth_hba_file
    std::string auth_user;
    // PgBouncer 1.25's default (1.24.1+, CVE-2025-2291): a password past VALID UNTIL, or a role that cannot
    // log in, reads as no password. Needs an auth_user allowed to read pg_authid (1.18 read pg_shadow).
    std::string auth_query =
        "SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid "
        "WHERE rolname=$1 AND rolcanlogin";
    std::string auth_dbname;

    PoolMode pool_mode = PoolMode::kSession;
    int max_client_conn = 100;
    int default_pool_size = 20;
    int min_pool_size = 0;
    int reserve_pool_size = 0;
    Micros reserve_pool_timeout{5'000'000};
    int max_db_connections = 0;    // 0 = unlimited
    int max_user_connections = 0;  // 0 = unlimited
    bool server_round_robin = false;
    // Named prepared statements in transaction/statement mode, LRU per server connection (PgBouncer 1.22+'s
    // default); 0 turns the tracking off.
    int max_prepared_statements =
        200;  // 0 = off; PgBouncer 1.18 has none (1.21 added it with 0, 1.22+ uses 200)

    std::vector<std::string> ignore_startup_parameters;
    bool disable_pqexec = false;
    bool application_name_add_host = false;
    std::string conffile;
    std::string service_name = "pgbouncer";  // Windows service name; job_name is an alias (both always equal)
    std::string job_name = "pgbouncer";
    int stats_period = 60;  // seconds

    std::string server_reset_query = "DISCARD ALL";
    bool server_reset_query_always = false;
    // PgBouncer 1.25's default: "<empty>" sends an empty query (cheapest round trip); "" turns checks off.
    std::string server_check_query = "<empty>";
    Micros server_check_delay{30'000'000};
    bool server_fast_close = false;
    Micros server_lifetime{3'600'000'000};
    Micros server_idle_timeout{600'000'000};
    Micros server_connect_timeout{15'000'000};
    Micros server_login_retry{15'000'000};
    Micros client_login_timeout{60'000'000};
    Micros autodb_idle_timeout{3'600'000'000};
    Micros dns_max_ttl{15'000'000};
    Micros dns_nxdomain_ttl{15'000'000};
    Micros dns_zone_check_period{0};
    std::string resolv_conf;  // accepted, not used
    Micros query_timeout{0};
    Micros query_wait_timeout{120'000'000};
    Micros query_wait_notify{5'000'000};  // NOTICE to a client waiting this long (PgBouncer 1.23+); 0 = off
    Micros cancel_wait_timeout{10'000'000};
    Micros client_idle_timeout{0};
    Micros idle_transaction_timeout{0};
    Micros suspend_timeout{10'000'000};
    // PgBouncer 1.19-1.25 globals (cfg helper).
    Micros transaction_timeout{0};        // a client in a transaction longer than this is closed; 0 = off
    int max_db_client_connections = 0;    // clients per database; 0 = unlimited
    int max_user_client_connections = 0;  // clients per user; 0 = unlimited
    // Parameters tracked per client beyond the built-in ones (1.25's default: IntervalStyle).
    std::vector<std::string> track_extra_parameters{"IntervalStyle"};
    int scram_iterations = 4096;  // of the SCRAM verifiers poolguard computes from plain passwords
    std::string auth_ldap_options;

    bool log_connections = true;
    bool log_disconnections = true;
    bool log_pooler_errors = true;
    bool log_stats = true;
    int verbose = 0;
    bool syslog = false;
    std::string syslog_ident = "pgbouncer";
    std::string syslog_facility = "daemon";

    std::vector<std::string> admin_users;
    std::vector<std::string> stats_users;

    int pkt_buf = 4096;
    int max_packet_size = 2147483647;
    int listen_backlog = 128;
    int sbuf_loopcnt = 5;
    int so_reuseport = 0;
    int tcp_defer_accept = 1;
    int tcp_socket_buffer = 0;
    int tcp_keepalive = 1;
    int tcp_keepcnt = 0;
    int tcp_keepidle = 0;
    int tcp_keepintvl = 0;
    int tcp_user_timeout = 0;

    std::string client_tls_sslmode = "disable";
    std::string client_tls_key_file, client_tls_cert_file, client_tls_ca_file;
    std::string client_tls_protocols = "secure", client_tls_ciphers = "fast", client_tls_ecdhcurve = "auto",
                client_tls_dheparams = "auto";
    std::string server_tls_sslmode = "disable";  // PgBouncer 1.18's default (1.20 changed it to prefer)
    std::string server_tls_key_file, server_tls_cert_file, server_tls_ca_file;
    std::string server_tls_protocols = "secure", server_tls_ciphers = "fast";
    std::string client_tls13_ciphers, server_tls13_ciphers;  // PgBouncer 1.25; empty = OpenSSL's default

    // [poolguard] — poolguard's own options.
    int worker_threads = 0;   // 0 = one per core
    std::string http_listen;  // "host:port"; empty = no HTTP endpoint
    // Bearer token that POST/PUT /api/v1/guard must present; empty = the HTTP endpoint is read-only.
    std::string http_api_token;
    // Control plane (issue 5: detect). Durations in microseconds like the rest; percentages as integers.
    Micros sample_interval{5'000'000};            // database view: one pg_stat_activity sample per interval
    Micros leak_detection_threshold{60'000'000};  // client idle in transaction holding a server; 0 = off
    std::string journal_file;                     // incident journal (JSON lines); empty = none
    std::string alertmanager_url;                 // "http://host:port"; empty = no push
    Micros alert_resend_interval{30'000'000};     // re-send firing alerts this often
    int utilization_warning = 80;                 // % of usable slots
    int utilization_critical = 90;                // % of usable slots
    Micros utilization_min_duration{5'000'000};   // a level must hold this long to raise or clear
    Micros exhaustion_horizon{1'800'000'000};     // forecast "exhausted in N min" raised under this
    Micros trend_window{600'000'000};             // samples the exhaustion trend is fitted over
    Micros spike_window{60'000'000};              // "a rise of many slots within" this
    int spike_min_connections = 0;                // rise that counts as a spike; 0 = 10 % of usable, >= 5
    Micros queue_wait_threshold{1'000'000};       // a client waiting this long for a server raises "queue"
    int leak_min_excess = 0;                      // Little's-law excess that counts; 0 = 3 connections
    int error_rate_warning = 1;                   // 53300/refusals per minute that raise a warning
    std::string control_user;                     // role of the sampling connection; empty = see docs
    std::string control_password;                 // its password; empty = auth_file / database entry
    // Responders (issue 6, src/respond). Modes "off" | "dry-run" | "on"; a responder's own key empty =
    // respond.
    std::string respond = "dry-run";
    std::string respond_terminate_idle, respond_cancel_long, respond_end_leaks;
    Micros kill_idle_after{300'000'000};     // terminate backends idle longer than this
    Micros cancel_long_after{120'000'000};   // cancel queries running longer than this
    Micros cancel_grace_period{10'000'000};  // ... and terminate them if still running this much later
    Micros kill_leak_after{300'000'000};     // end connections idle in transaction longer than this
    int max_actions_per_minute = 10;         // per responder (dry-run decisions count too)
    std::vector<std::string> protect_users, protect_applications;  // globs never acted on
    // Circuit breaker per database (issue 6, src/pool/circuit_breaker.h).
    bool breaker = true;
    Micros breaker_wait_bound{10'000'000};   // a client waiting this long opens it; 0 = waits never do
    Micros breaker_open_seconds{5'000'000};  // open this long before a half-open probe
    int breaker_login_failures = 3;          // consecutive failed server logins (53300 opens at once)
    // A client that stops in the middle of a message for this long is ended with 08P01 (issue 15); 0 = never.
    Micros partial_message_timeout{30'000'000};
    // Adaptive pool size (issue 6 part 4, src/pool/adaptive_limit.h): Gradient2 between min_pool_size and
    // the budget (pool_size, less the slots others hold when the database view sees them).
    bool adaptive_pool = false;           // default for [databases] entries without adaptive_pool=
    Micros adaptive_window{1'000'000};    // a window closes after this long (with >= 1 query) ...
    int adaptive_window_samples = 100;    // ... or at a 250 ms tick once it holds this many queries
    double adaptive_smoothing = 0.2;      // Gradient2 smoothing
    double adaptive_rtt_tolerance = 1.5;  // Gradient2 rtt_tolerance
    int adaptive_long_window = 2400;      // Gradient2 long window, in windows (~10 min of 250 ms)
    double adaptive_queue_size = 2.0;     // Gradient2 queue size, in connections
    double adaptive_error_backoff = 0.9;  // limit multiplier after a window with failed logins
    // [classes]: priority classes in file order (issue 6, src/config/classes.h).
    std::vector<ClassConfig> classes;
    // Every [poolguard] line in file order (including the ones above), so a component can read its own
    // keys; the loader warns about keys it does not know itself.
    std::vector<RawEntry> poolguard_entries;
    // Lines of sections the loader does not interpret (e.g. [peers], [classes]), by lowercased section name.
    std::map<std::string, std::vector<RawEntry>> extra_sections;

    // Where the setting of each effective pool parameter lives, resolved for one (database, user).
    PoolMode effective_pool_mode(const DatabaseConfig& db, const UserConfig* user) const;
    int effective_pool_size(const DatabaseConfig& db) const;
    // [users] pool_size wins over the database's, which wins over default_pool_size (PgBouncer 1.25).
    int effective_pool_size(const DatabaseConfig& db, const UserConfig* user) const;
    int effective_reserve_pool_size(const DatabaseConfig& db, const UserConfig* user) const;
    Micros effective_server_lifetime(const DatabaseConfig& db) const;
    int effective_max_db_client_connections(const DatabaseConfig& db) const;
    int effective_max_user_client_connections(const UserConfig* user) const;
    Micros effective_query_timeout(const UserConfig* user) const;
    Micros effective_idle_transaction_timeout(const UserConfig* user) const;
    Micros effective_transaction_timeout(const UserConfig* user) const;
    Micros effective_client_idle_timeout(const UserConfig* user) const;
    int effective_min_pool_size(const DatabaseConfig& db) const;
    int effective_max_db_connections(const DatabaseConfig& db) const;
    int effective_max_user_connections(const UserConfig* user) const;
    int effective_reserve_pool_size(const DatabaseConfig& db) const;
    bool effective_adaptive_pool(const DatabaseConfig& db) const;

    const DatabaseConfig* find_database(const std::string& name) const;  // exact name, else "*", else null
    const UserConfig* find_user(const std::string& name) const;
    // The entry a client asking for `name` gets: the exact entry, else a copy of "*" named `name` whose
    // dbname is `name` unless "*" sets one; nullopt when neither exists.
    std::optional<DatabaseConfig> resolve_database(const std::string& name) const;
    // The last [poolguard] value for `key` (lowercase), or null.
    const RawEntry* poolguard_option(const std::string& key) const;
};

// A warning found while loading (unknown parameter, accepted-but-ignored parameter, ...).
struct LoadWarning {
    std::string file;
    int line = 0;  // 0 when the warning is about the file as a whole
    std::string message;
};

// "<file>:<line>: <message>" (or "<file>: <message>"), for logs.
std::string format_warning(const LoadWarning& warning);

struct LoadResult {
    Config config;
    std::vector<LoadWarning> warnings;
};

// Loads a pgbouncer.ini-compatible file (with %include). An invalid value is an error whose message names
// file, line and parameter, e.g. "/etc/pg.ini:12: invalid value 'abc' for max_client_conn: not an integer".
Result<LoadResult> load_config(const std::string& path);

// One parameter as SHOW CONFIG lists it.
struct ParameterDescription {
    std::string key;
    std::string value;
    std::string default_value;
    bool changeable = true;
};
std::vector<ParameterDescription> describe_parameters(const Config& config);

// Changes one [pgbouncer]/[poolguard] parameter in `config` (admin console SET), validating the value like
// the loader does. Errors carry a SQLSTATE for the admin client.
Status set_parameter(Config& config, const std::string& key, const std::string& value);

// server_connect_timeout, 15 s when it is 0: a server login's budget.
inline std::chrono::milliseconds server_connect_budget(const Config& c) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(c.server_connect_timeout.count() > 0
                                                                     ? c.server_connect_timeout
                                                                     : std::chrono::microseconds(15'000'000));
}
// cancel_wait_timeout, server_connect_budget when it is 0: how long delivering a cancel request may take
// (to a server, or to a [peers] process).
inline std::chrono::milliseconds cancel_budget(const Config& c) {
    return c.cancel_wait_timeout.count() > 0
               ? std::chrono::duration_cast<std::chrono::milliseconds>(c.cancel_wait_timeout)
               : server_connect_budget(c);
}

// Parses the same format from a string (for tests); `name` is used as the file name in messages.
Result<LoadResult> parse_config(const std::string& text, const std::string& name);

}  // namespace poolguard::config
