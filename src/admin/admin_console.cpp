// Owns the admin console's command language: dispatch, privileges and PgBouncer 1.25-shaped result sets.
#include "admin/admin_console.h"

#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "admin/admin_columns.h"
#include "admin/admin_command.h"
#include "protocol/pg/messages.h"

namespace poolguard::admin {

namespace {

namespace pg = protocol::pg;

using Value = std::optional<std::string>;
using Row = std::vector<Value>;

using namespace columns;  // NOLINT: the SHOW column lists (admin/admin_columns.h)

// Session parameters some drivers SHOW or SET right after connecting; the console answers them with fixed
// values (SHOW) or a "SET ignored" notice (SET), for every user, as PgBouncer does.
struct FakeParam {
    std::string_view name;
    std::string_view value;
};
constexpr FakeParam kFakeParams[] = {
    {"client_encoding", "UTF-8"},
    {"default_transaction_isolation", "read committed"},
    {"standard_conforming_strings", "on"},
    {"datestyle", "ISO"},
    {"timezone", "GMT"},
    {"extra_float_digits", "2"},
};

const FakeParam* find_fake_param(std::string_view name) {
    for (const auto& p : kFakeParams) {
        if (name.size() != p.name.size()) continue;
        bool same = true;
        for (size_t i = 0; i < name.size() && same; ++i)
            same = std::tolower(static_cast<unsigned char>(name[i])) == p.name[i];
        if (same) return &p;
    }
    return nullptr;
}

// The commands of PgBouncer 1.25, in its order, then poolguard's own SHOWs.
constexpr std::string_view kHelpDetail =
    "\n\tSHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION"
    "\n\tSHOW PEERS|PEER_POOLS"
    "\n\tSHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE"
    "\n\tSHOW DNS_HOSTS|DNS_ZONES"
    "\n\tSHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS"
    "\n\tSET key = arg"
    "\n\tRELOAD"
    "\n\tPAUSE [<db>]"
    "\n\tRESUME [<db>]"
    "\n\tDISABLE <db>"
    "\n\tENABLE <db>"
    "\n\tRECONNECT [<db>]"
    "\n\tKILL [<db>]"
    "\n\tKILL_CLIENT <client_id>"
    "\n\tSUSPEND"
    "\n\tSHUTDOWN"
    "\n\tSHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS"
    "\n\tWAIT_CLOSE [<db>]"
    "\n\tSHOW GUARD|CLASSES|BREAKERS|ADAPTIVE (poolguard)";

// ---- value formatting ----

Value num(int64_t v) {
    return std::to_string(v);
}
Value unum(uint64_t v) {
    return std::to_string(v);
}
Value flag(bool v) {
    return std::string(v ? "1" : "0");
}
Value real(double v, int decimals) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
    return std::string(buf);
}
Value text(const std::string& s) {
    return s;
}
Value text_or_null(const std::string& s) {
    return s.empty() ? Value{} : Value{s};
}

// "YYYY-MM-DD HH:MM:SS UTC"; the bare number when the time cannot be represented.
std::string format_time(int64_t unix_seconds) {
    const auto t = static_cast<std::time_t>(unix_seconds);
    std::tm tm{};
    char buf[64];
    if (static_cast<int64_t>(t) != unix_seconds || gmtime_r(&t, &tm) == nullptr ||
        std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        return std::to_string(unix_seconds);
    return buf;
}

std::string hex_id(uint64_t id) {
    char buf[2 + 16];
    buf[0] = '0';
    buf[1] = 'x';
    auto [end, ec] = std::to_chars(buf + 2, buf + sizeof buf, id, 16);
    (void)ec;  // 16 hex digits always fit
    return std::string(buf, end);
}

// Whole seconds and the microsecond remainder, as PgBouncer's maxwait/maxwait_us and wait/wait_us.
Value wait_seconds(int64_t us) {
    return num(us > 0 ? us / 1000000 : 0);
}
Value wait_micros(int64_t us) {
    return num(us > 0 ? us % 1000000 : 0);
}

// ---- execution context ----

struct Ctx {
    AdminBackend& backend;
    bool can_modify;
    std::string& out;

    // Appends an ErrorResponse; returns false so handlers can `return error(...)` to stop the query.
    bool error(std::string_view sqlstate, std::string_view message) const {
        pg::append_error(out,
                         pg::ErrorFields{"ERROR", std::string(sqlstate), excerpt(message, 1000), {}, {}});
        return false;
    }

    bool invalid_command(const AdminCommand& cmd) const {
        return error(sqlstate::kSyntaxError, "invalid command '" + excerpt(cmd.text) + "', use SHOW HELP;");
    }

    bool require_admin() const {
        return can_modify || error(sqlstate::kInsufficientPrivilege, "admin access needed");
    }

    // CommandComplete `tag` when `st` is ok, else the backend's error.
    bool finish(const Status& st, std::string_view tag) const {
        if (!st) {
            const Error& e = st.error();
            return error(e.sqlstate.empty() ? sqlstate::kProtocolViolation : e.sqlstate,
                         e.message.empty() ? std::string(tag) + " failed" : e.message);
        }
        pg::append_command_complete(out, tag);
        return true;
    }

    void result_set(const Columns& columns, const std::vector<Row>& rows) const {
        pg::append_row_description(out, columns);
        for (const Row& r : rows)
            pg::append_data_row(out, r);
        pg::append_command_complete(out, "SHOW");
    }
};

// ---- SHOW ----

bool show_pools(const Ctx& c) {
    std::vector<Row> rows;
    for (const PoolRow& p : c.backend.pools()) {
        rows.push_back({text(p.database), text(p.user), num(p.cl_active), num(p.cl_waiting),
                        num(0) /* cl_active_cancel_req */, num(0) /* cl_waiting_cancel_req */,
                        num(p.sv_active), num(0) /* sv_active_cancel */, num(0) /* sv_being_canceled */,
                        num(p.sv_idle), num(p.sv_used), num(p.sv_tested), num(p.sv_login),
                        wait_seconds(p.maxwait_us), wait_micros(p.maxwait_us), text(p.pool_mode),
                        text_or_null(p.load_balance_hosts), flag(p.paused)});
    }
    c.result_set(kPoolColumns, rows);
    return true;
}

// SHOW CLASSES / SHOW BREAKERS (issue 6): poolguard's own, no PgBouncer equivalent.
bool show_classes(const Ctx& c) {
    std::vector<Row> rows;
    for (const ClassRow& k : c.backend.classes()) {
        rows.push_back({text(k.database), text(k.user), text(k.name), num(k.priority), num(k.max_share),
                        num(k.cap), num(k.cl_active), num(k.cl_waiting), num(k.sv_active),
                        wait_seconds(k.maxwait_us), wait_micros(k.maxwait_us)});
    }
    c.result_set({"database", "user", "class", "priority", "max_share", "max_servers", "cl_active",
                  "cl_waiting", "sv_active", "maxwait", "maxwait_us"},
                 rows);
    return true;
}

bool show_breakers(const Ctx& c) {
    std::vector<Row> rows;
    for (const BreakerRow& b : c.backend.breakers()) {
        rows.push_back({text(b.database), text(b.state), num(static_cast<int64_t>(b.opens)),
                        wait_seconds(b.since_us), text(b.reason)});
    }
    c.result_set({"database", "state", "opens", "state_seconds", "reason"}, rows);
    return true;
}

// SHOW ADAPTIVE (issue 6 part 4): every pool's adaptive limit; SHOW POOLS keeps PgBouncer's columns.
bool show_adaptive(const Ctx& c) {
    std::vector<Row> rows;
    for (const AdaptiveRow& a : c.backend.adaptive()) {
        rows.push_back({text(a.database), text(a.user), flag(a.enabled), num(a.limit), num(a.min_limit),
                        num(a.budget), text(a.budget_source), num(a.pool_size), num(a.servers), num(a.in_use),
                        real(a.latency_ms, 3), real(a.long_latency_ms, 3), real(a.gradient, 2),
                        num(static_cast<int64_t>(a.windows))});
    }
    c.result_set(
        {"database", "user", "adaptive", "limit", "min_limit", "budget", "budget_source", "pool_size",
         "servers", "sv_in_use", "latency_ms", "long_latency_ms", "gradient", "windows"},
        rows);
    return true;
}

Row connection_row(const ConnectionRow& k) {
    return {text(k.type),
            text(k.user.empty() ? "(nouser)" : k.user),
            text(k.database.empty() ? "(nodb)" : k.database),
            text(k.replication.empty() ? std::string("none") : k.replication),
            text(k.state),
            text(k.addr),
            num(k.port),
            text(k.local_addr),
            num(k.local_port),
            format_time(k.connect_time_unix),
            format_time(k.request_time_unix),
            wait_seconds(k.wait_us),
            wait_micros(k.wait_us),
            flag(k.close_needed),
            hex_id(k.ptr),
            k.link ? hex_id(k.link) : std::string(),
            unum(k.remote_pid),
            text(k.tls),
            text(k.application_name),
            num(k.prepared_statements),
            unum(k.ptr)};
}

bool show_connections(const Ctx& c, const std::vector<ConnectionRow>& conns) {
    std::vector<Row> rows;
    for (const ConnectionRow& k : conns)
        rows.push_back(connection_row(k));
    c.result_set(kConnectionColumns, rows);
    return true;
}

// SHOW SOCKETS: PgBouncer's state names are the lists a connection is on (cl_active, sv_idle, ...).
std::string socket_state(const ConnectionRow& k) {
    const bool client = k.type == "C";
    std::string s = k.state;
    if (client && s == "idle") s = "active";  // an idle client is on PgBouncer's active list
    if (!client && s == "new") s = "login";
    return (client ? "cl_" : "sv_") + s;
}

bool show_sockets(const Ctx& c) {
    Columns columns = kConnectionColumns;
    columns.insert(columns.end(), kSocketExtraColumns.begin(), kSocketExtraColumns.end());
    std::vector<Row> rows;
    for (auto conns : {c.backend.clients(), c.backend.servers()}) {
        for (const ConnectionRow& k : conns) {
            Row r = connection_row(k);
            r[4] = socket_state(k);
            for (size_t i = 0; i < kSocketExtraColumns.size(); ++i)
                r.push_back(num(0));  // buffer positions: poolguard parses in place, nothing is pending
            rows.push_back(std::move(r));
        }
    }
    c.result_set(columns, rows);
    return true;
}

bool show_fds(const Ctx& c) {
    std::vector<Row> rows;
    auto add = [&](const FdRow& f) {
        rows.push_back({num(f.fd), text(f.task), text_or_null(f.user), text_or_null(f.database), text(f.addr),
                        num(f.port), unum(f.cancel), num(f.link), Value{}, Value{}, Value{}, Value{}, Value{},
                        Value{}, Value{}});
    };
    for (const FdRow& f : c.backend.listener_fds())
        add(f);
    const auto clients = c.backend.clients();
    const auto servers = c.backend.servers();
    auto fd_of = [](const std::vector<ConnectionRow>& conns, uint64_t id) {
        for (const auto& k : conns)
            if (k.ptr == id) return k.fd > 0 ? k.fd : 0;
        return 0;
    };
    for (const auto& [conns, task, peers] :
         {std::tuple{&clients, "client", &servers}, std::tuple{&servers, "server", &clients}}) {
        for (const ConnectionRow& k : *conns) {
            if (k.fd < 0) continue;
            add(FdRow{k.fd, task, k.user, k.database, k.addr, k.port, k.cancel_key,
                      k.link ? fd_of(*peers, k.link) : 0});
        }
    }
    // Secrets (password, SCRAM keys) are never shown; PgBouncer passes them only for its online restart.
    c.result_set(kFdColumns, rows);
    return true;
}

bool show_peers(const Ctx& c) {
    std::vector<Row> rows;
    for (const PeerRow& p : c.backend.peers())
        rows.push_back({num(p.peer_id), text(p.host), num(p.port), num(p.pool_size)});
    c.result_set({"peer_id", "host", "port", "pool_size"}, rows);
    return true;
}

bool show_peer_pools(const Ctx& c) {
    std::vector<Row> rows;
    for (const PeerPoolRow& p : c.backend.peer_pools())
        rows.push_back({num(p.peer_id), num(p.cl_active_cancel_req), num(p.cl_waiting_cancel_req),
                        num(p.sv_active_cancel), num(p.sv_login)});
    c.result_set({"peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req", "sv_active_cancel", "sv_login"},
                 rows);
    return true;
}

// PgBouncer's internals with no equivalent in poolguard: the columns, no rows.
bool show_empty(const Ctx& c, const Columns& columns) {
    c.result_set(columns, {});
    return true;
}

// Interpretation of AdminBackend::stats_averages(): each field of its rows is a per-second rate over the last
// stats_period (delta / period seconds), the time fields included (microseconds spent per second). From that:
//   avg_xact_count / avg_query_count / avg_recv / avg_sent = the rates themselves (per second, PgBouncer's);
//   avg_xact_time  = xact_time rate / xact_count rate   = delta xact_time / delta xacts
//                    (PgBouncer: average transaction duration in microseconds; 0 when no transaction);
//   avg_query_time = likewise per query;
//   avg_wait_time  = the wait_time rate (PgBouncer 1.18: microseconds of client waiting per second).
struct Averages {
    uint64_t xact_count = 0, query_count = 0, recv = 0, sent = 0, xact_time = 0, query_time = 0,
             wait_time = 0, server_assignments = 0, client_parses = 0, server_parses = 0, binds = 0;
};

Averages averages_of(const StatsRow& rate) {
    Averages a;
    a.xact_count = rate.xact_count;
    a.query_count = rate.query_count;
    a.recv = rate.bytes_received;
    a.sent = rate.bytes_sent;
    a.xact_time = rate.xact_count ? rate.xact_time_us / rate.xact_count : 0;
    a.query_time = rate.query_count ? rate.query_time_us / rate.query_count : 0;
    a.wait_time = rate.wait_time_us;
    a.server_assignments = rate.server_assignment_count;
    a.client_parses = rate.client_parse_count;
    a.server_parses = rate.server_parse_count;
    a.binds = rate.bind_count;
    return a;
}

std::map<std::string, Averages> averages_by_database(AdminBackend& backend) {
    std::map<std::string, Averages> out;
    for (const StatsRow& r : backend.stats_averages())
        out[r.database] = averages_of(r);
    return out;
}

bool show_stats(const Ctx& c) {
    const auto avgs = averages_by_database(c.backend);
    std::vector<Row> rows;
    for (const StatsRow& t : c.backend.stats_totals()) {
        const auto it = avgs.find(t.database);
        const Averages a = it == avgs.end() ? Averages{} : it->second;
        rows.push_back({text(t.database),
                        unum(t.server_assignment_count),
                        unum(t.xact_count),
                        unum(t.query_count),
                        unum(t.bytes_received),
                        unum(t.bytes_sent),
                        unum(t.xact_time_us),
                        unum(t.query_time_us),
                        unum(t.wait_time_us),
                        unum(t.client_parse_count),
                        unum(t.server_parse_count),
                        unum(t.bind_count),
                        unum(a.server_assignments),
                        unum(a.xact_count),
                        unum(a.query_count),
                        unum(a.recv),
                        unum(a.sent),
                        unum(a.xact_time),
                        unum(a.query_time),
                        unum(a.wait_time),
                        unum(a.client_parses),
                        unum(a.server_parses),
                        unum(a.binds)});
    }
    c.result_set(kStatsColumns, rows);
    return true;
}

bool show_stats_totals(const Ctx& c) {
    std::vector<Row> rows;
    for (const StatsRow& t : c.backend.stats_totals()) {
        rows.push_back({text(t.database), unum(t.server_assignment_count), unum(t.xact_count),
                        unum(t.query_count), unum(t.bytes_received), unum(t.bytes_sent), unum(t.xact_time_us),
                        unum(t.query_time_us), unum(t.wait_time_us), unum(t.client_parse_count),
                        unum(t.server_parse_count), unum(t.bind_count)});
    }
    c.result_set(kStatsTotalsColumns, rows);
    return true;
}

bool show_stats_averages(const Ctx& c) {
    std::vector<Row> rows;
    for (const StatsRow& r : c.backend.stats_averages()) {
        const Averages a = averages_of(r);
        rows.push_back({text(r.database), unum(a.server_assignments), unum(a.xact_count), unum(a.query_count),
                        unum(a.recv), unum(a.sent), unum(a.xact_time), unum(a.query_time), unum(a.wait_time),
                        unum(a.client_parses), unum(a.server_parses), unum(a.binds)});
    }
    c.result_set(kStatsAveragesColumns, rows);
    return true;
}

void add_stats(StatsRow& sum, const StatsRow& r) {
    sum.xact_count += r.xact_count;
    sum.query_count += r.query_count;
    sum.bytes_received += r.bytes_received;
    sum.bytes_sent += r.bytes_sent;
    sum.xact_time_us += r.xact_time_us;
    sum.query_time_us += r.query_time_us;
    sum.wait_time_us += r.wait_time_us;
    sum.server_assignment_count += r.server_assignment_count;
    sum.client_parse_count += r.client_parse_count;
    sum.server_parse_count += r.server_parse_count;
    sum.bind_count += r.bind_count;
}

// SHOW TOTALS: SHOW STATS summed over every database, one (name, value) row per figure, with 1.25's names.
bool show_totals(const Ctx& c) {
    StatsRow total, rate;
    for (const StatsRow& t : c.backend.stats_totals())
        add_stats(total, t);
    for (const StatsRow& r : c.backend.stats_averages())
        add_stats(rate, r);
    const Averages a = averages_of(rate);
    const std::vector<std::pair<const char*, uint64_t>> figures = {
        {"total_server_assignment_count", total.server_assignment_count},
        {"total_xact_count", total.xact_count},
        {"total_query_count", total.query_count},
        {"total_client_bytes", total.bytes_received},
        {"total_server_bytes", total.bytes_sent},
        {"total_xact_time", total.xact_time_us},
        {"total_query_time", total.query_time_us},
        {"total_wait_time", total.wait_time_us},
        {"total_ps_client_parse_count", total.client_parse_count},
        {"total_ps_server_parse_count", total.server_parse_count},
        {"total_ps_bind_count", total.bind_count},
        {"avg_server_assignment_count", a.server_assignments},
        {"avg_xact_count", a.xact_count},
        {"avg_query_count", a.query_count},
        {"avg_client_bytes", a.recv},
        {"avg_server_bytes", a.sent},
        {"avg_xact_time", a.xact_time},
        {"avg_query_time", a.query_time},
        {"avg_wait_time", a.wait_time},
        {"avg_ps_client_parse_count", a.client_parses},
        {"avg_ps_server_parse_count", a.server_parses},
        {"avg_ps_bind_count", a.binds},
    };
    std::vector<Row> rows;
    for (const auto& [name, value] : figures)
        rows.push_back({std::string(name), unum(value)});
    c.result_set({"name", "value"}, rows);
    return true;
}

bool show_databases(const Ctx& c) {
    std::vector<Row> rows;
    for (const DatabaseRow& d : c.backend.databases()) {
        rows.push_back({text(d.name), text_or_null(d.host), num(d.port), text(d.database),
                        text_or_null(d.force_user), num(d.pool_size), num(d.min_pool_size),
                        num(d.reserve_pool), num(d.server_lifetime_s), text_or_null(d.pool_mode),
                        text_or_null(d.load_balance_hosts), num(d.max_connections),
                        num(d.current_connections), num(d.max_client_connections),
                        num(d.current_client_connections), flag(d.paused), flag(d.disabled)});
    }
    c.result_set(kDatabaseColumns, rows);
    return true;
}

bool show_users(const Ctx& c) {
    std::vector<Row> rows;
    for (const UserRow& u : c.backend.users())
        // As 1.25: pool_size / reserve_pool_size empty (not NULL) unless set in [users].
        rows.push_back({text(u.name), u.pool_size > 0 ? num(u.pool_size) : Value{std::string()},
                        u.reserve_pool_size > 0 ? num(u.reserve_pool_size) : Value{std::string()},
                        text_or_null(u.pool_mode), num(u.max_user_connections), num(u.current_connections),
                        num(u.max_user_client_connections), num(u.current_client_connections)});
    c.result_set(kUserColumns, rows);
    return true;
}

bool show_config(const Ctx& c) {
    std::vector<Row> rows;
    for (const AdminBackend::ConfigRow& r : c.backend.config_rows())
        rows.push_back(
            {text(r.key), text(r.value), text(r.default_value), std::string(r.changeable ? "yes" : "no")});
    c.result_set({"key", "value", "default", "changeable"}, rows);
    return true;
}

bool show_lists(const Ctx& c) {
    std::vector<Row> rows;
    for (const auto& [name, items] : c.backend.lists())
        rows.push_back({text(name), num(items)});
    c.result_set({"list", "items"}, rows);
    return true;
}

bool show_version(const Ctx& c) {
    c.result_set({"version"}, {{c.backend.version()}});
    return true;
}

bool show_state(const Ctx& c) {
    std::vector<Row> rows;
    for (const auto& [key, value] : c.backend.state())
        rows.push_back({text(key), text(value)});
    c.result_set({"key", "value"}, rows);
    return true;
}

bool show_guard(const Ctx& c) {
    std::vector<Row> rows;
    for (const auto& g : c.backend.guard_rows())
        rows.push_back({text(g.component), text(g.name), text(g.mode), text(g.state), text(g.detail)});
    c.result_set({"component", "name", "mode", "state", "detail"}, rows);
    return true;
}

bool show_help(const Ctx& c) {
    pg::append_error(c.out, pg::ErrorFields{"NOTICE", "00000", "Console usage", std::string(kHelpDetail), {}},
                     'N');
    pg::append_command_complete(c.out, "SHOW");
    return true;
}

bool run_show(const Ctx& c, const AdminCommand& cmd) {
    if (!cmd.arg) return c.invalid_command(cmd);
    if (const FakeParam* p = find_fake_param(*cmd.arg)) {
        c.result_set({std::string(p->name)}, {{std::string(p->value)}});
        return true;
    }
    std::string what = *cmd.arg;
    for (char& ch : what)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));

    if (what == "help") return show_help(c);
    if (what == "pools") return show_pools(c);
    if (what == "clients") return show_connections(c, c.backend.clients());
    if (what == "servers") return show_connections(c, c.backend.servers());
    if (what == "stats") return show_stats(c);
    if (what == "stats_totals") return show_stats_totals(c);
    if (what == "stats_averages") return show_stats_averages(c);
    if (what == "totals") return show_totals(c);
    if (what == "databases") return show_databases(c);
    if (what == "users") return show_users(c);
    if (what == "config") return show_config(c);
    if (what == "lists") return show_lists(c);
    if (what == "version") return show_version(c);
    if (what == "state") return show_state(c);
    if (what == "guard") return show_guard(c);
    if (what == "classes") return show_classes(c);
    if (what == "breakers") return show_breakers(c);
    if (what == "adaptive") return show_adaptive(c);
    if (what == "fds") return show_fds(c);
    if (what == "sockets" || what == "active_sockets") return show_sockets(c);
    if (what == "peers") return show_peers(c);
    if (what == "peer_pools") return show_peer_pools(c);
    if (what == "mem") return show_empty(c, {"name", "size", "used", "free", "memtotal"});
    if (what == "dns_hosts") return show_empty(c, {"hostname", "ttl", "addrs"});
    if (what == "dns_zones") return show_empty(c, {"zonename", "serial", "count"});
    return c.invalid_command(cmd);
}

// ---- SET and the control verbs ----

bool run_set(const Ctx& c, const AdminCommand& cmd) {
    if (find_fake_param(cmd.set_key)) {
        pg::append_notice(c.out, "SET ignored");
        pg::append_command_complete(c.out, "SET");
        return true;
    }
    if (!c.require_admin()) return false;
    return c.finish(c.backend.set(cmd.set_key, cmd.set_value), "SET " + cmd.set_key + "=" + cmd.set_value);
}

// KILL_CLIENT's argument: the id in decimal (SHOW CLIENTS' id) or in hex with 0x (SHOW CLIENTS' ptr).
std::optional<uint64_t> parse_client_id(std::string_view s) {
    int base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        s.remove_prefix(2);
        base = 16;
    }
    uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, base);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
}

enum class ArgRule { kNone, kOptional, kRequired };

struct Verb {
    std::string_view name;
    ArgRule arg;
    Status (*call)(AdminBackend&, const std::string& arg);
};

const Verb kVerbs[] = {
    {"pause", ArgRule::kOptional, [](AdminBackend& b, const std::string& a) { return b.pause(a); }},
    {"resume", ArgRule::kOptional, [](AdminBackend& b, const std::string& a) { return b.resume(a); }},
    {"disable", ArgRule::kRequired, [](AdminBackend& b, const std::string& a) { return b.disable(a); }},
    {"enable", ArgRule::kRequired, [](AdminBackend& b, const std::string& a) { return b.enable(a); }},
    {"reload", ArgRule::kNone, [](AdminBackend& b, const std::string&) { return b.reload(); }},
    {"kill", ArgRule::kOptional, [](AdminBackend& b, const std::string& a) { return b.kill(a); }},
    {"reconnect", ArgRule::kOptional, [](AdminBackend& b, const std::string& a) { return b.reconnect(a); }},
    {"wait_close", ArgRule::kOptional, [](AdminBackend& b, const std::string& a) { return b.wait_close(a); }},
    {"suspend", ArgRule::kNone, [](AdminBackend& b, const std::string&) { return b.suspend(); }},
};

bool run_command(const Ctx& c, const AdminCommand& cmd) {
    if (cmd.verb == "show" || cmd.verb == "select") return run_show(c, cmd);
    if (cmd.verb == "set") return run_set(c, cmd);

    auto invalid = [&] { return c.invalid_command(cmd); };
    std::string tag = cmd.verb;
    for (char& ch : tag)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));

    if (cmd.verb == "kill_client") {
        if (!cmd.arg) return invalid();
        if (!c.require_admin()) return false;
        const auto id = parse_client_id(*cmd.arg);
        if (!id) return c.error(sqlstate::kSyntaxError, "invalid client pointer supplied");
        return c.finish(c.backend.kill_client(*id), tag);
    }
    if (cmd.verb == "shutdown") {
        // SHUTDOWN: immediate; WAIT_FOR_SERVERS / WAIT_FOR_CLIENTS: the shutdowns of SIGINT / SIGTERM.
        std::string mode = cmd.arg.value_or("");
        for (char& ch : mode)
            ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        if (!mode.empty() && mode != "wait_for_servers" && mode != "wait_for_clients") return invalid();
        if (!c.require_admin()) return false;
        if (mode.empty()) return c.finish(c.backend.shutdown(), tag);
        return c.finish(c.backend.shutdown_waiting(mode == "wait_for_clients"), tag);
    }
    for (const Verb& v : kVerbs) {
        if (v.name != cmd.verb) continue;
        if (v.arg == ArgRule::kNone && cmd.arg) return invalid();
        if (!c.require_admin()) return false;
        if (v.arg == ArgRule::kRequired && !cmd.arg)
            return c.error(sqlstate::kSyntaxError, "a database is required");
        return c.finish(v.call(c.backend, cmd.arg.value_or(std::string())), tag);
    }
    return invalid();
}

}  // namespace

AdminConsole::AdminConsole(AdminBackend& backend, bool can_modify)
    : backend_(backend), can_modify_(can_modify) {}

void AdminConsole::execute(std::string_view sql, std::string& out) {
    // A Query's text is a C string: nothing after a NUL belongs to it.
    if (const size_t nul = sql.find('\0'); nul != std::string_view::npos) sql = sql.substr(0, nul);

    wait_.reset();
    rest_.clear();
    const std::vector<std::string_view> statements = split_statements(sql);
    if (statements.empty()) {
        pg::append_empty_query(out);
        return;
    }
    run_statements(std::vector<std::string>(statements.begin(), statements.end()), out);
}

void AdminConsole::resume(std::string& out) {
    wait_.reset();
    std::vector<std::string> rest = std::move(rest_);
    rest_.clear();
    run_statements(rest, out);
}

void AdminConsole::run_statements(const std::vector<std::string>& statements, std::string& out) {
    const Ctx ctx{backend_, can_modify_, out};
    for (size_t i = 0; i < statements.size(); ++i) {
        const std::string_view stmt = statements[i];
        // A command that throws (only the backend can) may have written part of a result set: drop it.
        const size_t mark = out.size();
        bool ok = false;
        bool wait_close = false;
        try {
            auto cmd = parse_command(stmt);
            ok = cmd ? run_command(ctx, *cmd) : ctx.error(cmd.error().sqlstate, cmd.error().message);
            if (ok && cmd && (cmd->verb == "wait_close" || cmd->verb == "suspend")) {
                wait_ = PendingWait{
                    cmd->verb == "suspend" ? PendingWait::Kind::kSuspend : PendingWait::Kind::kWaitClose,
                    cmd->arg.value_or(std::string())};
                wait_close = true;
            }
        } catch (const std::exception& e) {
            out.resize(mark);
            ok = ctx.error(sqlstate::kInternalError, std::string("internal error: ") + e.what());
        } catch (...) {
            out.resize(mark);
            ok = ctx.error(sqlstate::kInternalError, "internal error");
        }
        if (!ok) return;
        if (wait_close) {
            rest_.assign(statements.begin() + static_cast<std::ptrdiff_t>(i) + 1, statements.end());
            return;
        }
    }
}

}  // namespace poolguard::admin
