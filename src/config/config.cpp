// Owns loading pgbouncer.ini into Config: the parameter table, per-section handling, validation, lookups.
#include "config/config.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string_view>
#include <utility>
#include <variant>

#include "config/connstring.h"
#include "config/ini_parser.h"
#include "config/value_parser.h"

namespace poolguard::config {

const char* to_string(PoolMode mode) {
    switch (mode) {
        case PoolMode::kSession:
            return "session";
        case PoolMode::kTransaction:
            return "transaction";
        case PoolMode::kStatement:
            return "statement";
    }
    return "session";
}

const char* to_string(AuthType type) {
    switch (type) {
        case AuthType::kTrust:
            return "trust";
        case AuthType::kPlain:
            return "plain";
        case AuthType::kMd5:
            return "md5";
        case AuthType::kScramSha256:
            return "scram-sha-256";
        case AuthType::kAny:
            return "any";
        case AuthType::kHba:
            return "hba";
        case AuthType::kCert:
            return "cert";
    }
    return "md5";
}

std::string format_warning(const LoadWarning& warning) {
    std::string out = warning.file;
    if (warning.line > 0) out += ":" + std::to_string(warning.line);
    return out + ": " + warning.message;
}

PoolMode Config::effective_pool_mode(const DatabaseConfig& db, const UserConfig* user) const {
    // PgBouncer's order: the user's setting wins over the database's, which wins over the global one.
    if (user != nullptr && user->pool_mode) return *user->pool_mode;
    if (db.pool_mode) return *db.pool_mode;
    return pool_mode;
}

int Config::effective_pool_size(const DatabaseConfig& db) const {
    return db.pool_size.value_or(default_pool_size);
}

int Config::effective_min_pool_size(const DatabaseConfig& db) const {
    return db.min_pool_size.value_or(min_pool_size);
}

int Config::effective_max_db_connections(const DatabaseConfig& db) const {
    return db.max_db_connections > 0 ? db.max_db_connections : max_db_connections;
}

int Config::effective_max_user_connections(const UserConfig* user) const {
    return user != nullptr && user->max_user_connections > 0 ? user->max_user_connections
                                                             : max_user_connections;
}

int Config::effective_reserve_pool_size(const DatabaseConfig& db) const {
    return db.reserve_pool.value_or(reserve_pool_size);
}

bool Config::effective_adaptive_pool(const DatabaseConfig& db) const {
    return db.adaptive_pool.value_or(adaptive_pool);
}

const DatabaseConfig* Config::find_database(const std::string& name) const {
    const DatabaseConfig* fallback = nullptr;
    for (const DatabaseConfig& db : databases) {
        if (db.name == name) return &db;
        if (db.name == "*") fallback = &db;
    }
    return fallback;
}

const UserConfig* Config::find_user(const std::string& name) const {
    for (const UserConfig& user : users) {
        if (user.name == name) return &user;
    }
    return nullptr;
}

std::optional<DatabaseConfig> Config::resolve_database(const std::string& name) const {
    const DatabaseConfig* db = find_database(name);
    if (db == nullptr) return std::nullopt;
    DatabaseConfig resolved = *db;
    if (resolved.name != name) {
        resolved.name = name;
        if (resolved.dbname.empty()) resolved.dbname = name;
    }
    return resolved;
}

const RawEntry* Config::poolguard_option(const std::string& key) const {
    for (auto it = poolguard_entries.rbegin(); it != poolguard_entries.rend(); ++it) {
        if (it->key == key) return &*it;
    }
    return nullptr;
}

namespace {

// ---- The parameter table of [pgbouncer] and [poolguard] ----

enum class ValueKind {
    kString,
    kInt,
    kIntOrBool,
    kBool,
    kDouble,
    kDuration,
    kList,
    kAddressList,
    kOctal,
    kPoolMode,
    kAuthType,
    kSslMode,
    kHostPort
};

// kNotYet: loads, but a non-default value draws an "accepted but not implemented" warning.
// kCustom: `unsupported` decides, for settings where only some values are implemented.
enum class Support { kImplemented, kNotYet, kCustom };

using FieldPtr =
    std::variant<std::string Config::*, int Config::*, bool Config::*, double Config::*, Micros Config::*,
                 std::vector<std::string> Config::*, PoolMode Config::*, AuthType Config::*>;

// Returns "name=value" when the configured value is one poolguard does not implement yet, else "".
using UnsupportedCheck = std::string (*)(const Config&);

struct ParamSpec {
    std::string_view name;
    ValueKind kind = ValueKind::kString;
    FieldPtr field;
    std::int64_t min = 0;
    std::int64_t max = INT_MAX;
    Support support = Support::kImplemented;
    UnsupportedCheck unsupported = nullptr;
    double real_min = 0;  // kDouble: the accepted range
    double real_max = 0;
};

ParamSpec string_param(std::string_view name, std::string Config::*field,
                       Support support = Support::kImplemented) {
    return {name, ValueKind::kString, field, 0, 0, support, nullptr};
}
ParamSpec int_param(std::string_view name, int Config::*field, std::int64_t min = 0,
                    std::int64_t max = INT_MAX, Support support = Support::kImplemented) {
    return {name, ValueKind::kInt, field, min, max, support, nullptr};
}
ParamSpec flag_int_param(std::string_view name, int Config::*field, std::int64_t max = INT_MAX) {
    return {name, ValueKind::kIntOrBool, field, 0, max, Support::kImplemented, nullptr};
}
ParamSpec bool_param(std::string_view name, bool Config::*field, Support support = Support::kImplemented) {
    return {name, ValueKind::kBool, field, 0, 1, support, nullptr};
}
ParamSpec duration_param(std::string_view name, Micros Config::*field,
                         Support support = Support::kImplemented) {
    return {name, ValueKind::kDuration, field, 0, 0, support, nullptr};
}
ParamSpec double_param(std::string_view name, double Config::*field, double min, double max) {
    return {name, ValueKind::kDouble, field, 0, 0, Support::kImplemented, nullptr, min, max};
}
ParamSpec list_param(std::string_view name, std::vector<std::string> Config::*field) {
    return {name, ValueKind::kList, field, 0, 0, Support::kImplemented, nullptr};
}

std::string unsupported_auth_type(const Config& cfg) {
    if (cfg.auth_type == AuthType::kHba || cfg.auth_type == AuthType::kCert) {
        return std::string("auth_type=") + to_string(cfg.auth_type);
    }
    return {};
}
std::string unsupported_client_sslmode(const Config& cfg) {
    return cfg.client_tls_sslmode == "disable" ? std::string()
                                               : "client_tls_sslmode=" + cfg.client_tls_sslmode;
}
std::string unsupported_server_sslmode(const Config& cfg) {
    // prefer without certificates degrades to plain TCP when TLS is unavailable, so it is safe to accept.
    const std::string& mode = cfg.server_tls_sslmode;
    return mode == "disable" || mode == "prefer" ? std::string() : "server_tls_sslmode=" + mode;
}

const std::vector<ParamSpec>& pgbouncer_params() {
    using C = Config;
    constexpr Support kNotYet = Support::kNotYet;
    static const std::vector<ParamSpec> kParams = {
        string_param("logfile", &C::logfile),
        string_param("pidfile", &C::pidfile),
        {"listen_addr", ValueKind::kAddressList, &C::listen_addr, 0, 0, Support::kImplemented, nullptr},
        int_param("listen_port", &C::listen_port, 1, 65535),
        string_param("unix_socket_dir", &C::unix_socket_dir),
        {"unix_socket_mode", ValueKind::kOctal, &C::unix_socket_mode, 0, 07777, Support::kImplemented,
         nullptr},
        string_param("unix_socket_group", &C::unix_socket_group),
        string_param("user", &C::user, kNotYet),
        {"pool_mode", ValueKind::kPoolMode, &C::pool_mode, 0, 0, Support::kImplemented, nullptr},
        int_param("max_client_conn", &C::max_client_conn),
        int_param("default_pool_size", &C::default_pool_size),
        int_param("min_pool_size", &C::min_pool_size),
        int_param("reserve_pool_size", &C::reserve_pool_size),
        duration_param("reserve_pool_timeout", &C::reserve_pool_timeout),
        int_param("max_db_connections", &C::max_db_connections),
        int_param("max_user_connections", &C::max_user_connections),
        bool_param("server_round_robin", &C::server_round_robin),
        list_param("ignore_startup_parameters", &C::ignore_startup_parameters),
        bool_param("disable_pqexec", &C::disable_pqexec),
        bool_param("application_name_add_host", &C::application_name_add_host),
        string_param("conffile", &C::conffile),
        string_param("service_name", &C::service_name),
        string_param("job_name", &C::job_name),
        int_param("stats_period", &C::stats_period, 1),
        {"auth_type", ValueKind::kAuthType, &C::auth_type, 0, 0, Support::kCustom, &unsupported_auth_type},
        string_param("auth_file", &C::auth_file),
        string_param("auth_hba_file", &C::auth_hba_file, kNotYet),
        string_param("auth_user", &C::auth_user),
        string_param("auth_query", &C::auth_query),
        string_param("auth_dbname", &C::auth_dbname),
        bool_param("syslog", &C::syslog, kNotYet),
        string_param("syslog_ident", &C::syslog_ident, kNotYet),
        string_param("syslog_facility", &C::syslog_facility, kNotYet),
        bool_param("log_connections", &C::log_connections),
        bool_param("log_disconnections", &C::log_disconnections),
        bool_param("log_pooler_errors", &C::log_pooler_errors),
        bool_param("log_stats", &C::log_stats),
        int_param("verbose", &C::verbose),
        list_param("admin_users", &C::admin_users),
        list_param("stats_users", &C::stats_users),
        string_param("server_reset_query", &C::server_reset_query),
        bool_param("server_reset_query_always", &C::server_reset_query_always),
        string_param("server_check_query", &C::server_check_query),
        duration_param("server_check_delay", &C::server_check_delay),
        bool_param("server_fast_close", &C::server_fast_close),
        duration_param("server_lifetime", &C::server_lifetime),
        duration_param("server_idle_timeout", &C::server_idle_timeout),
        duration_param("server_connect_timeout", &C::server_connect_timeout),
        duration_param("server_login_retry", &C::server_login_retry),
        duration_param("client_login_timeout", &C::client_login_timeout),
        duration_param("autodb_idle_timeout", &C::autodb_idle_timeout),
        duration_param("dns_max_ttl", &C::dns_max_ttl, kNotYet),
        duration_param("dns_nxdomain_ttl", &C::dns_nxdomain_ttl, kNotYet),
        duration_param("dns_zone_check_period", &C::dns_zone_check_period, kNotYet),
        string_param("resolv_conf", &C::resolv_conf, kNotYet),
        duration_param("query_timeout", &C::query_timeout),
        duration_param("query_wait_timeout", &C::query_wait_timeout),
        duration_param("query_wait_notify", &C::query_wait_notify),
        duration_param("cancel_wait_timeout", &C::cancel_wait_timeout),
        duration_param("client_idle_timeout", &C::client_idle_timeout),
        duration_param("idle_transaction_timeout", &C::idle_transaction_timeout),
        duration_param("suspend_timeout", &C::suspend_timeout),
        int_param("pkt_buf", &C::pkt_buf, 1),
        int_param("max_packet_size", &C::max_packet_size, 1),
        int_param("listen_backlog", &C::listen_backlog, 1),
        int_param("sbuf_loopcnt", &C::sbuf_loopcnt),
        flag_int_param("so_reuseport", &C::so_reuseport, 1),
        flag_int_param("tcp_defer_accept", &C::tcp_defer_accept),
        int_param("tcp_socket_buffer", &C::tcp_socket_buffer),
        flag_int_param("tcp_keepalive", &C::tcp_keepalive, 1),
        int_param("tcp_keepcnt", &C::tcp_keepcnt),
        int_param("tcp_keepidle", &C::tcp_keepidle),
        int_param("tcp_keepintvl", &C::tcp_keepintvl),
        int_param("tcp_user_timeout", &C::tcp_user_timeout),
        {"client_tls_sslmode", ValueKind::kSslMode, &C::client_tls_sslmode, 0, 0, Support::kCustom,
         &unsupported_client_sslmode},
        string_param("client_tls_key_file", &C::client_tls_key_file, kNotYet),
        string_param("client_tls_cert_file", &C::client_tls_cert_file, kNotYet),
        string_param("client_tls_ca_file", &C::client_tls_ca_file, kNotYet),
        string_param("client_tls_protocols", &C::client_tls_protocols, kNotYet),
        string_param("client_tls_ciphers", &C::client_tls_ciphers, kNotYet),
        string_param("client_tls_ecdhcurve", &C::client_tls_ecdhcurve, kNotYet),
        string_param("client_tls_dheparams", &C::client_tls_dheparams, kNotYet),
        {"server_tls_sslmode", ValueKind::kSslMode, &C::server_tls_sslmode, 0, 0, Support::kCustom,
         &unsupported_server_sslmode},
        string_param("server_tls_ca_file", &C::server_tls_ca_file, kNotYet),
        string_param("server_tls_key_file", &C::server_tls_key_file, kNotYet),
        string_param("server_tls_cert_file", &C::server_tls_cert_file, kNotYet),
        string_param("server_tls_protocols", &C::server_tls_protocols, kNotYet),
        string_param("server_tls_ciphers", &C::server_tls_ciphers, kNotYet),
        int_param("peer_id", &C::peer_id, 0, 16383, kNotYet),
        int_param("max_prepared_statements", &C::max_prepared_statements),
    };
    return kParams;
}

const std::vector<ParamSpec>& poolguard_params() {
    static const std::vector<ParamSpec> kParams = {
        int_param("worker_threads", &Config::worker_threads, 0, 1024),
        {"http_listen", ValueKind::kHostPort, &Config::http_listen, 0, 0, Support::kImplemented, nullptr},
        string_param("http_api_token", &Config::http_api_token),
        // Control plane (src/control): database view, detectors, journal, alerting.
        duration_param("sample_interval", &Config::sample_interval),
        duration_param("leak_detection_threshold", &Config::leak_detection_threshold),
        string_param("journal_file", &Config::journal_file),
        string_param("alertmanager_url", &Config::alertmanager_url),
        duration_param("alert_resend_interval", &Config::alert_resend_interval),
        int_param("utilization_warning", &Config::utilization_warning, 1, 1000),
        int_param("utilization_critical", &Config::utilization_critical, 1, 1000),
        duration_param("utilization_min_duration", &Config::utilization_min_duration),
        duration_param("exhaustion_horizon", &Config::exhaustion_horizon),
        duration_param("trend_window", &Config::trend_window),
        duration_param("spike_window", &Config::spike_window),
        int_param("spike_min_connections", &Config::spike_min_connections, 0, 1000000),
        duration_param("queue_wait_threshold", &Config::queue_wait_threshold),
        int_param("leak_min_excess", &Config::leak_min_excess, 0, 1000000),
        int_param("error_rate_warning", &Config::error_rate_warning, 1, 1000000),
        string_param("control_user", &Config::control_user),
        string_param("control_password", &Config::control_password),
        // Responders (src/respond).
        string_param("respond", &Config::respond),
        string_param("respond_terminate_idle", &Config::respond_terminate_idle),
        string_param("respond_cancel_long", &Config::respond_cancel_long),
        string_param("respond_end_leaks", &Config::respond_end_leaks),
        duration_param("kill_idle_after", &Config::kill_idle_after),
        duration_param("cancel_long_after", &Config::cancel_long_after),
        duration_param("cancel_grace_period", &Config::cancel_grace_period),
        duration_param("kill_leak_after", &Config::kill_leak_after),
        int_param("max_actions_per_minute", &Config::max_actions_per_minute, 1, 1000000),
        list_param("protect_users", &Config::protect_users),
        list_param("protect_applications", &Config::protect_applications),
        // Circuit breaker per database (issue 6).
        bool_param("breaker", &Config::breaker),
        duration_param("breaker_wait_bound", &Config::breaker_wait_bound),
        duration_param("breaker_open_seconds", &Config::breaker_open_seconds),
        int_param("breaker_login_failures", &Config::breaker_login_failures, 0, 1000000),
        // Adaptive pool size (issue 6 part 4).
        bool_param("adaptive_pool", &Config::adaptive_pool),
        duration_param("adaptive_window", &Config::adaptive_window),
        int_param("adaptive_window_samples", &Config::adaptive_window_samples, 1, 1000000),
        double_param("adaptive_smoothing", &Config::adaptive_smoothing, 0.01, 1.0),
        double_param("adaptive_rtt_tolerance", &Config::adaptive_rtt_tolerance, 1.0, 100.0),
        int_param("adaptive_long_window", &Config::adaptive_long_window, 1, 1000000),
        double_param("adaptive_queue_size", &Config::adaptive_queue_size, 0.0, 1000.0),
        double_param("adaptive_error_backoff", &Config::adaptive_error_backoff, 0.01, 1.0),
    };
    return kParams;
}

const ParamSpec* find_param(std::span<const ParamSpec> params, std::string_view name) {
    for (const ParamSpec& spec : params) {
        if (spec.name == name) return &spec;
    }
    return nullptr;
}

bool is_default(const Config& cfg, const Config& defaults, const FieldPtr& field) {
    return std::visit([&](auto member) { return cfg.*member == defaults.*member; }, field);
}

std::string location(const std::string& file, int line) {
    return line > 0 ? file + ":" + std::to_string(line) + ": " : file + ": ";
}

// The message every bad value gets: file, line, the value as written, the parameter and the reason.
std::string invalid_value(const IniEntry& entry, std::string_view value, std::string_view param,
                          std::string_view reason, std::string_view context = {}) {
    std::string message = location(entry.file, entry.line) + "invalid value '" + std::string(value) +
                          "' for " + std::string(param) + std::string(context) + ": " + std::string(reason);
    if (value.find_first_of(";#") != std::string_view::npos) {
        message += " (';' and '#' start a comment only at the beginning of a line)";
    }
    return message;
}

// ---- The loader: one instance per load, fed line by line by the ini parser ----

class Loader {
  public:
    explicit Loader(std::string path) { result_.config.file = std::move(path); }
    // Starts from an existing configuration (SET on the admin console).
    explicit Loader(const Config& base) { result_.config = base; }
    Config& config() { return result_.config; }

    Status on_entry(const IniEntry& entry) {
        if (entry.kind == IniEntry::Kind::kSection) return on_section(entry);
        const std::string& section = entry.section;
        if (section.empty()) {
            // Nothing could ever read such a line (PgBouncer refuses it too); most likely a header is
            // missing.
            return fail(location(entry.file, entry.line) + "'" + entry.key +
                        "' is outside of any section; add a [pgbouncer], [databases], ... header above it");
        }
        if (section == "pgbouncer") return on_param(entry, pgbouncer_params(), "pgbouncer");
        if (section == "poolguard") {
            result_.config.poolguard_entries.push_back(
                RawEntry{to_lower(entry.key), entry.value, entry.file, entry.line});
            return on_param(entry, poolguard_params(), "poolguard");
        }
        if (section == "databases") return on_database(entry);
        if (section == "users") return on_user(entry);
        if (section == "classes") return on_class(entry);
        if (section == "peers" && !peers_warned_) {
            peers_warned_ = true;
            warn(entry, "[peers] is accepted but not implemented by poolguard yet");
        }
        result_.config.extra_sections[section].push_back(
            RawEntry{entry.key, entry.value, entry.file, entry.line});
        return {};
    }

    Result<LoadResult> finish() {
        Config& cfg = result_.config;
        if (set_at_.find("conffile") == set_at_.end()) cfg.conffile = cfg.file;
        warn_not_implemented();
        if (Status status = validate(); !status) return std::unexpected(status.error());
        return std::move(result_);
    }

  private:
    struct Origin {
        std::string file;
        int line = 0;
        long order = 0;  // position among all lines read, across included files
    };

    void warn(const IniEntry& entry, std::string message) {
        result_.warnings.push_back(LoadWarning{entry.file, entry.line, std::move(message)});
    }

    // [classes] NAME = application_name=GLOB, user=GLOB, priority=N, max_share=PERCENT (issue 6).
    Status on_class(const IniEntry& entry) {
        auto parsed = parse_class_line(entry.key, entry.value);
        if (!parsed) return fail(location(entry.file, entry.line) + "[classes] " + parsed.error().message);
        parsed->line = entry.line;
        auto& classes = result_.config.classes;
        for (const auto& c : classes) {
            if (c.name == parsed->name)
                return fail(location(entry.file, entry.line) + "[classes] class '" + c.name +
                            "' is already defined at line " + std::to_string(c.line));
        }
        classes.push_back(std::move(*parsed));
        return {};
    }

    Status on_section(const IniEntry& entry) {
        static constexpr std::string_view kKnown[] = {"databases", "users", "pgbouncer",
                                                      "poolguard", "peers", "classes"};
        if (std::find(std::begin(kKnown), std::end(kKnown), entry.section) == std::end(kKnown)) {
            warn(entry, "unknown section [" + entry.section + "]; poolguard does not interpret its lines");
        }
        return {};
    }

    Status on_param(const IniEntry& entry, std::span<const ParamSpec> params, std::string_view section) {
        std::string name = to_lower(entry.key);
        const ParamSpec* spec = find_param(params, name);
        if (spec == nullptr) {
            std::string message = "unknown parameter '" + name + "' in [" + std::string(section) + "]";
            if (section == "pgbouncer" && find_param(poolguard_params(), name) != nullptr) {
                message += "; it belongs in [poolguard]";
            } else if (section == "poolguard" && find_param(pgbouncer_params(), name) != nullptr) {
                message += "; it belongs in [pgbouncer]";
            }
            warn(entry, std::move(message));
            return {};
        }
        if (Status status = assign(entry, *spec); !status) return status;
        set_at_[name] = Origin{entry.file, entry.line, ++order_};
        Config& cfg = result_.config;
        if (name == "job_name")
            cfg.service_name = cfg.job_name;  // PgBouncer keeps one setting under two names
        if (name == "service_name") cfg.job_name = cfg.service_name;
        return {};
    }

    Status assign(const IniEntry& entry, const ParamSpec& spec) {
        Config& cfg = result_.config;
        const std::string& value = entry.value;
        auto bad = [&](const std::string& reason) {
            return fail(invalid_value(entry, value, spec.name, reason));
        };
        switch (spec.kind) {
            case ValueKind::kString:
                cfg.*std::get<std::string Config::*>(spec.field) = value;
                return {};
            case ValueKind::kInt:
            case ValueKind::kIntOrBool: {
                auto parsed = spec.kind == ValueKind::kInt ? parse_integer(value, spec.min, spec.max)
                                                           : parse_integer_or_bool(value, spec.min, spec.max);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<int Config::*>(spec.field) = static_cast<int>(*parsed);
                return {};
            }
            case ValueKind::kBool: {
                auto parsed = parse_bool(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<bool Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kDouble: {
                auto parsed = parse_real(value, spec.real_min, spec.real_max);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<double Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kDuration: {
                auto parsed = parse_duration(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<Micros Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kList:
                cfg.*std::get<std::vector<std::string> Config::*>(spec.field) = parse_list(value);
                return {};
            case ValueKind::kAddressList: {
                std::vector<std::string> addresses = parse_list(value);
                for (const std::string& address : addresses) {
                    if (address.find_first_of(" \t") != std::string::npos) {
                        return bad("addresses must be separated by commas");
                    }
                }
                cfg.*std::get<std::vector<std::string> Config::*>(spec.field) = std::move(addresses);
                return {};
            }
            case ValueKind::kOctal: {
                auto parsed = parse_octal_mode(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<int Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kPoolMode: {
                auto parsed = parse_pool_mode(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<PoolMode Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kAuthType: {
                auto parsed = parse_auth_type(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<AuthType Config::*>(spec.field) = *parsed;
                return {};
            }
            case ValueKind::kSslMode: {
                auto parsed = parse_sslmode(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<std::string Config::*>(spec.field) = std::move(*parsed);
                return {};
            }
            case ValueKind::kHostPort: {
                auto parsed = parse_host_port(value);
                if (!parsed) return bad(parsed.error());
                cfg.*std::get<std::string Config::*>(spec.field) = std::move(*parsed);
                return {};
            }
        }
        return {};
    }

    Status on_database(const IniEntry& entry) {
        const std::string& name = entry.key;
        if (name == "pgbouncer") {
            return fail(location(entry.file, entry.line) +
                        "database name 'pgbouncer' is reserved for the admin console");
        }
        std::string context = " in database '" + name + "'";
        auto pairs = parse_connstring(entry.value);
        if (!pairs) {
            return fail(location(entry.file, entry.line) + "invalid connection string for database '" + name +
                        "': " + pairs.error());
        }
        DatabaseConfig db;
        db.name = name;
        db.line = entry.line;
        for (const ConnstringPair& pair : *pairs) {
            const std::string& key = pair.key;
            const std::string& value = pair.value;
            auto bad = [&](const std::string& reason) {
                return fail(invalid_value(entry, value, key, reason, context));
            };
            auto integer = [&](std::int64_t min, std::int64_t max) -> std::expected<int, std::string> {
                auto parsed = parse_integer(value, min, max);
                if (!parsed) return std::unexpected(parsed.error());
                return static_cast<int>(*parsed);
            };
            if (key == "host") {
                db.host = value;
            } else if (key == "port") {
                auto port = integer(1, 65535);
                if (!port) return bad(port.error());
                db.port = *port;
            } else if (key == "dbname") {
                db.dbname = value;
            } else if (key == "user") {
                db.user = value;
            } else if (key == "password") {
                db.password = value;
            } else if (key == "auth_user") {
                db.auth_user = value;
            } else if (key == "auth_dbname") {
                db.auth_dbname = value;
            } else if (key == "client_encoding") {
                db.client_encoding = value;
            } else if (key == "datestyle") {
                db.datestyle = value;
            } else if (key == "timezone") {
                db.timezone = value;
            } else if (key == "application_name") {
                db.application_name = value;
            } else if (key == "connect_query") {
                db.connect_query = value;
            } else if (key == "pool_size" || key == "min_pool_size" || key == "reserve_pool" ||
                       key == "reserve_pool_size" || key == "max_db_connections") {
                auto count = integer(0, INT_MAX);
                if (!count) return bad(count.error());
                if (key == "pool_size") db.pool_size = *count;
                if (key == "min_pool_size") db.min_pool_size = *count;
                if (key == "reserve_pool" || key == "reserve_pool_size") db.reserve_pool = *count;
                if (key == "max_db_connections") db.max_db_connections = *count;
            } else if (key == "adaptive_pool") {
                auto on = parse_bool(value);
                if (!on) return bad(on.error());
                db.adaptive_pool = *on;
            } else if (key == "pool_mode") {
                auto mode = parse_pool_mode(value);
                if (!mode) return bad(mode.error());
                db.pool_mode = *mode;
            } else {
                return fail(location(entry.file, entry.line) + "unknown parameter '" + key +
                            "' in connection string of database '" + name + "'");
            }
        }
        // "*" keeps an empty dbname: the fallback connects to whatever database the client asked for.
        if (db.dbname.empty() && name != "*") db.dbname = name;
        auto& dbs = result_.config.databases;
        auto it =
            std::find_if(dbs.begin(), dbs.end(), [&](const DatabaseConfig& d) { return d.name == name; });
        if (it != dbs.end()) {
            const Origin& previous = db_origin_[name];
            warn(entry, "database '" + name + "' is defined again; the definition at " + previous.file + ":" +
                            std::to_string(previous.line) + " is replaced");
            *it = std::move(db);
        } else {
            dbs.push_back(std::move(db));
        }
        db_origin_[name] = Origin{entry.file, entry.line};
        return {};
    }

    Status on_user(const IniEntry& entry) {
        const std::string& name = entry.key;
        std::string context = " in user '" + name + "'";
        auto pairs = parse_connstring(entry.value);
        if (!pairs) {
            return fail(location(entry.file, entry.line) + "invalid settings for user '" + name +
                        "': " + pairs.error());
        }
        UserConfig user;
        user.name = name;
        user.line = entry.line;
        for (const ConnstringPair& pair : *pairs) {
            if (pair.key == "pool_mode") {
                auto mode = parse_pool_mode(pair.value);
                if (!mode) return fail(invalid_value(entry, pair.value, pair.key, mode.error(), context));
                user.pool_mode = *mode;
            } else if (pair.key == "max_user_connections") {
                auto count = parse_integer(pair.value, 0, INT_MAX);
                if (!count) return fail(invalid_value(entry, pair.value, pair.key, count.error(), context));
                user.max_user_connections = static_cast<int>(*count);
            } else {
                return fail(location(entry.file, entry.line) + "unknown parameter '" + pair.key +
                            "' for user '" + name + "' (expected pool_mode or max_user_connections)");
            }
        }
        auto& users = result_.config.users;
        auto it =
            std::find_if(users.begin(), users.end(), [&](const UserConfig& u) { return u.name == name; });
        if (it != users.end()) {
            const Origin& previous = user_origin_[name];
            warn(entry, "user '" + name + "' is defined again; the definition at " + previous.file + ":" +
                            std::to_string(previous.line) + " is replaced");
            *it = std::move(user);
        } else {
            users.push_back(std::move(user));
        }
        user_origin_[name] = Origin{entry.file, entry.line};
        return {};
    }

    // Judged on the final values, so a setting changed back to its default by a later line stays quiet.
    void warn_not_implemented() {
        const Config& cfg = result_.config;
        std::vector<std::pair<long, LoadWarning>> found;
        for (std::span<const ParamSpec> params :
             {std::span(pgbouncer_params()), std::span(poolguard_params())}) {
            for (const ParamSpec& spec : params) {
                auto origin = set_at_.find(std::string(spec.name));
                if (origin == set_at_.end() || spec.support == Support::kImplemented) continue;
                std::string what;
                if (spec.support == Support::kCustom) {
                    what = spec.unsupported(cfg);
                } else if (!is_default(cfg, defaults_, spec.field)) {
                    what = std::string(spec.name);
                }
                if (what.empty()) continue;
                const Origin& where = origin->second;
                found.emplace_back(where.order,
                                   LoadWarning{where.file, where.line,
                                               what + " is accepted but not implemented by poolguard yet"});
            }
        }
        std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto& [order, warning] : found)
            result_.warnings.push_back(std::move(warning));
    }

    Origin origin_of(std::string_view param) const {
        auto it = set_at_.find(std::string(param));
        if (it != set_at_.end()) return it->second;
        return Origin{result_.config.file, 0};
    }

    // Settings that load individually but cannot work together.
    Status validate() const {
        const Config& cfg = result_.config;
        bool needs_passwords = cfg.auth_type == AuthType::kPlain || cfg.auth_type == AuthType::kMd5 ||
                               cfg.auth_type == AuthType::kScramSha256;
        bool any_auth_user = !cfg.auth_user.empty() ||
                             std::any_of(cfg.databases.begin(), cfg.databases.end(),
                                         [](const DatabaseConfig& db) { return !db.auth_user.empty(); });
        if (needs_passwords && cfg.auth_file.empty() && !any_auth_user) {
            Origin origin = origin_of("auth_type");
            std::string which = std::string("auth_type=") + to_string(cfg.auth_type);
            if (origin.line == 0) which += " (the default)";
            return fail(location(origin.file, origin.line) + "auth_file is required for " + which +
                        ": set auth_file (or auth_user with auth_query), or choose another auth_type");
        }
        if (cfg.auth_type == AuthType::kHba && cfg.auth_hba_file.empty()) {
            Origin origin = origin_of("auth_type");
            return fail(location(origin.file, origin.line) + "auth_hba_file is required for auth_type=hba");
        }
        bool has_fallback = cfg.find_database("*") != nullptr;
        auto names_database = [&](const std::string& name) {
            return has_fallback || cfg.find_database(name) != nullptr;
        };
        if (!cfg.auth_dbname.empty() && !names_database(cfg.auth_dbname)) {
            Origin origin = origin_of("auth_dbname");
            return fail(location(origin.file, origin.line) + "invalid value '" + cfg.auth_dbname +
                        "' for auth_dbname: not a database in [databases]");
        }
        for (const DatabaseConfig& db : cfg.databases) {
            if (!db.auth_dbname.empty() && !names_database(db.auth_dbname)) {
                const Origin& origin = db_origin_.at(db.name);
                return fail(location(origin.file, origin.line) + "invalid value '" + db.auth_dbname +
                            "' for auth_dbname in database '" + db.name + "': not a database in [databases]");
            }
        }
        return validate_control_plane();
    }

    // [poolguard] control-plane settings that are valid one by one but not together.
    Status validate_control_plane() const {
        const Config& cfg = result_.config;
        auto refuse = [&](std::string_view param, const std::string& value, const std::string& why) {
            Origin origin = origin_of(param);
            return fail(location(origin.file, origin.line) + "invalid value '" + value + "' for " +
                        std::string(param) + ": " + why);
        };
        auto seconds = [](Micros m) { return std::to_string(static_cast<double>(m.count()) / 1e6); };
        if (cfg.sample_interval.count() < 100'000)
            return refuse("sample_interval", seconds(cfg.sample_interval), "must be at least 0.1 s");
        if (cfg.alert_resend_interval.count() < 1'000'000)
            return refuse("alert_resend_interval", seconds(cfg.alert_resend_interval),
                          "must be at least 1 s");
        if (cfg.spike_window.count() < 1'000'000)
            return refuse("spike_window", seconds(cfg.spike_window), "must be at least 1 s");
        if (cfg.trend_window.count() < 1'000'000)
            return refuse("trend_window", seconds(cfg.trend_window), "must be at least 1 s");
        if (cfg.utilization_warning > cfg.utilization_critical)
            return refuse(
                "utilization_warning", std::to_string(cfg.utilization_warning),
                "must not exceed utilization_critical (" + std::to_string(cfg.utilization_critical) + ")");
        if (!cfg.alertmanager_url.empty() && !cfg.alertmanager_url.starts_with("http://"))
            return refuse("alertmanager_url", cfg.alertmanager_url,
                          "expected http://host:port (https is not supported)");
        if (!cfg.alertmanager_url.empty() && cfg.alertmanager_url.size() <= 7)
            return refuse("alertmanager_url", cfg.alertmanager_url, "no host after http://");
        return validate_responders();
    }

    // [poolguard] responder settings (src/respond).
    Status validate_responders() const {
        const Config& cfg = result_.config;
        auto refuse = [&](std::string_view param, const std::string& value, const std::string& why) {
            Origin origin = origin_of(param);
            return fail(location(origin.file, origin.line) + "invalid value '" + value + "' for " +
                        std::string(param) + ": " + why);
        };
        auto mode_ok = [](std::string v) {
            for (auto& ch : v)
                ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
            return v == "off" || v == "on" || v == "dry-run" || v == "dry_run" || v == "dryrun";
        };
        if (!mode_ok(cfg.respond)) return refuse("respond", cfg.respond, "expected off, dry-run or on");
        const std::pair<const char*, const std::string*> modes[] = {
            {"respond_terminate_idle", &cfg.respond_terminate_idle},
            {"respond_cancel_long", &cfg.respond_cancel_long},
            {"respond_end_leaks", &cfg.respond_end_leaks}};
        for (const auto& [key, value] : modes)
            if (!value->empty() && !mode_ok(*value))
                return refuse(key, *value, "expected off, dry-run or on");
        const std::pair<const char*, Micros> limits[] = {{"kill_idle_after", cfg.kill_idle_after},
                                                         {"cancel_long_after", cfg.cancel_long_after},
                                                         {"kill_leak_after", cfg.kill_leak_after}};
        for (const auto& [key, value] : limits)
            if (value.count() < 1'000'000)
                return refuse(key, std::to_string(static_cast<double>(value.count()) / 1e6),
                              "must be at least 1 s");
        return {};
    }

    LoadResult result_;
    const Config defaults_{};
    std::map<std::string, Origin> set_at_;  // parameter -> where it was last set
    std::map<std::string, Origin> db_origin_;
    std::map<std::string, Origin> user_origin_;
    bool peers_warned_ = false;
    long order_ = 0;
};

}  // namespace

Result<LoadResult> load_config(const std::string& path) {
    Loader loader(path);
    Status status = parse_ini_file(path, [&](const IniEntry& entry) { return loader.on_entry(entry); });
    if (!status) return std::unexpected(status.error());
    return loader.finish();
}

Result<LoadResult> parse_config(const std::string& text, const std::string& name) {
    Loader loader(name);
    Status status = parse_ini_text(text, name, [&](const IniEntry& entry) { return loader.on_entry(entry); });
    if (!status) return std::unexpected(status.error());
    return loader.finish();
}

}  // namespace poolguard::config

namespace poolguard::config {

namespace {
std::string format_value(const Config& cfg, const ParamSpec& spec) {
    return std::visit(
        [&](auto member) -> std::string {
            using T = std::decay_t<decltype(cfg.*member)>;
            const auto& v = cfg.*member;
            if constexpr (std::is_same_v<T, std::string>) {
                return v;
            } else if constexpr (std::is_same_v<T, int>) {
                if (spec.kind == ValueKind::kOctal) {
                    char buf[16];
                    std::snprintf(buf, sizeof buf, "0%o", static_cast<unsigned>(v));
                    return buf;
                }
                return std::to_string(v);
            } else if constexpr (std::is_same_v<T, bool>) {
                return v ? "1" : "0";
            } else if constexpr (std::is_same_v<T, double>) {
                char buf[32];
                std::snprintf(buf, sizeof buf, "%g", v);
                return buf;
            } else if constexpr (std::is_same_v<T, Micros>) {
                // PgBouncer shows seconds; keep fractions only when there are any.
                if (v.count() % 1'000'000 == 0) return std::to_string(v.count() / 1'000'000);
                char buf[32];
                std::snprintf(buf, sizeof buf, "%.6g", static_cast<double>(v.count()) / 1e6);
                return buf;
            } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
                std::string out;
                for (const auto& item : v)
                    out += (out.empty() ? "" : ",") + item;
                return out;
            } else if constexpr (std::is_same_v<T, PoolMode>) {
                return to_string(v);
            } else {
                return to_string(v);
            }
        },
        spec.field);
}

// Parameters whose change needs a restart (listeners, identity, process setup).
bool changeable_at_runtime(std::string_view name) {
    static constexpr std::string_view kFixed[] = {
        "listen_addr", "listen_port", "unix_socket_dir", "unix_socket_mode", "unix_socket_group", "user",
        "pidfile", "so_reuseport", "worker_threads", "http_listen", "http_api_token", "listen_backlog",
        "peer_id",
        // The control plane reads its settings once at start.
        "sample_interval", "leak_detection_threshold", "journal_file", "alertmanager_url",
        "alert_resend_interval", "utilization_warning", "utilization_critical", "utilization_min_duration",
        "exhaustion_horizon", "trend_window", "spike_window", "spike_min_connections", "queue_wait_threshold",
        "leak_min_excess", "error_rate_warning", "control_user", "control_password",
        // The responders' limits too; their modes (respond, respond_*) change at run time.
        "kill_idle_after", "cancel_long_after", "cancel_grace_period", "kill_leak_after",
        "max_actions_per_minute", "protect_users", "protect_applications"};
    return std::find(std::begin(kFixed), std::end(kFixed), name) == std::end(kFixed);
}
}  // namespace

std::vector<ParameterDescription> describe_parameters(const Config& config) {
    static const Config defaults;
    std::vector<ParameterDescription> out;
    for (const auto* table : {&pgbouncer_params(), &poolguard_params()}) {
        for (const ParamSpec& spec : *table) {
            // Secrets are shown as set or not: SHOW CONFIG is open to stats_users.
            const bool secret = spec.name == "control_password" || spec.name == "http_api_token";
            std::string value = format_value(config, spec);
            if (secret && !value.empty()) value = "********";
            out.push_back(ParameterDescription{std::string(spec.name), std::move(value),
                                               format_value(defaults, spec),
                                               changeable_at_runtime(spec.name)});
        }
    }
    return out;
}

Status set_parameter(Config& config, const std::string& key, const std::string& value) {
    const std::string name = to_lower(key);
    const bool in_pgbouncer = find_param(pgbouncer_params(), name) != nullptr;
    const ParamSpec* spec =
        in_pgbouncer ? find_param(pgbouncer_params(), name) : find_param(poolguard_params(), name);
    if (spec == nullptr) return fail("unknown config parameter: " + key, "42704");
    if (!changeable_at_runtime(name))
        return fail("parameter " + name + " cannot be changed at run time; restart instead", "55P02");
    Loader loader(config);
    IniEntry entry;
    entry.kind = IniEntry::Kind::kKeyValue;
    entry.section = in_pgbouncer ? "pgbouncer" : "poolguard";
    entry.key = name;
    entry.value = value;
    entry.file = "SET";
    if (Status st = loader.on_entry(entry); !st) return fail(st.error().message, "22023");
    config = loader.config();
    return {};
}

}  // namespace poolguard::config
