// Owns the column lists of the admin console's SHOW result sets (internal to src/admin): each starts with
// exactly PgBouncer 1.25's columns, in order; poolguard's extras follow.
#pragma once

#include <string>
#include <vector>

namespace poolguard::admin::columns {

using Columns = std::vector<std::string>;

// ---- column lists: each starts with exactly PgBouncer 1.25's columns, in order; poolguard extras follow.
// Source: PgBouncer 1.25.2's doc/usage.md and what a running 1.25.2 answers (compared column by column in
// tests/integration/admin_show_test.cpp).

inline const Columns kPoolColumns = {
    "database",
    "user",
    "cl_active",
    "cl_waiting",
    "cl_active_cancel_req",
    "cl_waiting_cancel_req",
    "sv_active",
    "sv_active_cancel",
    "sv_being_canceled",
    "sv_idle",
    "sv_used",
    "sv_tested",
    "sv_login",
    "maxwait",
    "maxwait_us",
    "pool_mode",
    "load_balance_hosts",
    "paused",  // poolguard: 1 when the pool's database is paused
};

inline const Columns kConnectionColumns = {
    "type",         "user",       "database",   "replication",      "state",
    "addr",         "port",       "local_addr", "local_port",       "connect_time",
    "request_time", "wait",       "wait_us",    "close_needed",     "ptr",
    "link",         "remote_pid", "tls",        "application_name", "prepared_statements",
    "id",  // the connection id in decimal (what KILL_CLIENT takes; ptr shows it in hex)
};

// SHOW SOCKETS / ACTIVE_SOCKETS: the connection columns, then PgBouncer's buffer positions.
inline const Columns kSocketExtraColumns = {"recv_pos",    "pkt_pos",   "pkt_remain", "send_pos",
                                            "send_remain", "pkt_avail", "send_avail"};

inline const Columns kStatsColumns = {
    "database",
    "total_server_assignment_count",
    "total_xact_count",
    "total_query_count",
    "total_received",
    "total_sent",
    "total_xact_time",
    "total_query_time",
    "total_wait_time",
    "total_client_parse_count",
    "total_server_parse_count",
    "total_bind_count",
    "avg_server_assignment_count",
    "avg_xact_count",
    "avg_query_count",
    "avg_recv",
    "avg_sent",
    "avg_xact_time",
    "avg_query_time",
    "avg_wait_time",
    "avg_client_parse_count",
    "avg_server_parse_count",
    "avg_bind_count",
};

inline const Columns kStatsTotalsColumns = {
    "database",           "server_assignment_count",
    "xact_count",         "query_count",
    "bytes_received",     "bytes_sent",
    "xact_time",          "query_time",
    "wait_time",          "client_parse_count",
    "server_parse_count", "bind_count",
};

// 1.25 names the last three of SHOW STATS_AVERAGES with an avg_ prefix, the others without.
inline const Columns kStatsAveragesColumns = {
    "database",
    "server_assignment_count",
    "xact_count",
    "query_count",
    "bytes_received",
    "bytes_sent",
    "xact_time",
    "query_time",
    "wait_time",
    "avg_client_parse_count",
    "avg_server_parse_count",
    "avg_bind_count",
};

inline const Columns kDatabaseColumns = {
    "name",
    "host",
    "port",
    "database",
    "force_user",
    "pool_size",
    "min_pool_size",
    "reserve_pool_size",
    "server_lifetime",
    "pool_mode",
    "load_balance_hosts",
    "max_connections",
    "current_connections",
    "max_client_connections",
    "current_client_connections",
    "paused",
    "disabled",
};

inline const Columns kUserColumns = {
    "name",
    "pool_size",
    "reserve_pool_size",
    "pool_mode",
    "max_user_connections",
    "current_connections",
    "max_user_client_connections",
    "current_client_connections",
};

inline const Columns kFdColumns = {
    "fd",        "task",     "user",     "database",         "addr",
    "port",      "cancel",   "link",     "client_encoding",  "std_strings",
    "datestyle", "timezone", "password", "scram_client_key", "scram_server_key"};

}  // namespace poolguard::admin::columns
