// Owns the parameter table of [pgbouncer] and [poolguard] (see param_table.h).
#include "config/param_table.h"

#include <algorithm>
#include <cstdio>

namespace poolguard::config::params {

namespace {
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

}  // namespace

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
        string_param("user", &C::user),
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
        int_param("max_db_client_connections", &C::max_db_client_connections),
        int_param("max_user_client_connections", &C::max_user_client_connections),
        list_param("track_extra_parameters", &C::track_extra_parameters),
        int_param("scram_iterations", &C::scram_iterations, 1),
        {"auth_type", ValueKind::kAuthType, &C::auth_type, 0, 0, Support::kImplemented, nullptr},
        string_param("auth_file", &C::auth_file),
        string_param("auth_hba_file", &C::auth_hba_file),
        string_param("auth_ident_file", &C::auth_ident_file),
        string_param("auth_ldap_options", &C::auth_ldap_options, kNotYet),
        string_param("auth_user", &C::auth_user),
        string_param("auth_query", &C::auth_query),
        string_param("auth_dbname", &C::auth_dbname),
        bool_param("syslog", &C::syslog),
        string_param("syslog_ident", &C::syslog_ident),
        string_param("syslog_facility", &C::syslog_facility),
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
        duration_param("transaction_timeout", &C::transaction_timeout),
        duration_param("suspend_timeout", &C::suspend_timeout),
        int_param("pkt_buf", &C::pkt_buf, 1, INT_MAX, kNotYet),
        int_param("max_packet_size", &C::max_packet_size, 1),
        int_param("listen_backlog", &C::listen_backlog, 1),
        int_param("sbuf_loopcnt", &C::sbuf_loopcnt, 0, INT_MAX, kNotYet),
        flag_int_param("so_reuseport", &C::so_reuseport, 1),
        flag_int_param("tcp_defer_accept", &C::tcp_defer_accept),
        int_param("tcp_socket_buffer", &C::tcp_socket_buffer),
        flag_int_param("tcp_keepalive", &C::tcp_keepalive, 1),
        int_param("tcp_keepcnt", &C::tcp_keepcnt),
        int_param("tcp_keepidle", &C::tcp_keepidle),
        int_param("tcp_keepintvl", &C::tcp_keepintvl),
        int_param("tcp_user_timeout", &C::tcp_user_timeout),
        {"client_tls_sslmode", ValueKind::kSslMode, &C::client_tls_sslmode, 0, 0, Support::kImplemented,
         nullptr},
        string_param("client_tls_key_file", &C::client_tls_key_file),
        string_param("client_tls_cert_file", &C::client_tls_cert_file),
        string_param("client_tls_ca_file", &C::client_tls_ca_file),
        string_param("client_tls_protocols", &C::client_tls_protocols),
        string_param("client_tls_ciphers", &C::client_tls_ciphers),
        string_param("client_tls_ecdhcurve", &C::client_tls_ecdhcurve),
        string_param("client_tls_dheparams", &C::client_tls_dheparams),
        {"server_tls_sslmode", ValueKind::kSslMode, &C::server_tls_sslmode, 0, 0, Support::kImplemented,
         nullptr},
        string_param("server_tls_ca_file", &C::server_tls_ca_file),
        string_param("server_tls_key_file", &C::server_tls_key_file),
        string_param("server_tls_cert_file", &C::server_tls_cert_file),
        string_param("server_tls_protocols", &C::server_tls_protocols),
        string_param("server_tls_ciphers", &C::server_tls_ciphers),
        string_param("client_tls13_ciphers", &C::client_tls13_ciphers),
        string_param("server_tls13_ciphers", &C::server_tls13_ciphers),
        int_param("peer_id", &C::peer_id, 0, 16383),
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
        duration_param("partial_message_timeout", &Config::partial_message_timeout),  // issue 15
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
        // Fixed at start in PgBouncer 1.25 too (SHOW CONFIG changeable = no there).
        "disable_pqexec", "job_name", "pkt_buf", "track_extra_parameters", "resolv_conf",
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

}  // namespace poolguard::config::params
