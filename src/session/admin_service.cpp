// Owns AdminService: the admin console's window onto the running pooler (SHOW rows, PAUSE/RESUME/KILL...).
#include "session/admin_service.h"

#include "admin/stats_log.h"

#include <spdlog/spdlog.h>

#include <climits>

#include "config/value_parser.h"
#include "net/tls_context.h"
#include "respond/guard.h"
#include "session/client_session.h"
#include "session/proxy.h"

namespace poolguard::session {

namespace {
int64_t unix_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// Converts a steady-clock instant to wall-clock seconds (SHOW SERVERS times).
int64_t steady_to_unix(std::chrono::steady_clock::time_point t) {
    const auto delta = std::chrono::steady_clock::now() - t;
    return unix_seconds(std::chrono::system_clock::now() -
                        std::chrono::duration_cast<std::chrono::system_clock::duration>(delta));
}

std::string server_state(pool::ServerConnection::State s) {
    switch (s) {
        case pool::ServerConnection::State::kActive:
            return "active";
        case pool::ServerConnection::State::kIdle:
            return "idle";
        case pool::ServerConnection::State::kCleanup:
            return "used";
        case pool::ServerConnection::State::kConnecting:
            return "new";
        case pool::ServerConnection::State::kClosed:
            return "closed";
    }
    return "unknown";
}
}  // namespace

std::vector<admin::PoolRow> AdminService::pools() {
    std::vector<admin::PoolRow> rows;
    std::map<const pool::Pool*, size_t> index;
    for (const auto& [key, pool] : proxy_.pools().pools()) {
        admin::PoolRow r;
        r.database = key.first;
        r.user = key.second;
        const auto c = pool->counters();
        r.sv_active = c.active;
        r.sv_idle = c.idle;
        r.sv_used = c.cleanup;
        r.sv_tested = c.tested;
        r.sv_login = c.connecting;
        r.maxwait_us = pool->max_wait().count();
        r.pool_mode = config::to_string(pool->mode());
        r.paused = pool->paused();
        if (const auto* db = proxy_.config().find_database(key.first);
            db != nullptr && db->host.find(',') != std::string::npos)
            r.load_balance_hosts = db->load_balance_round_robin ? "round-robin" : "disable";
        index[pool.get()] = rows.size();
        rows.push_back(std::move(r));
    }
    for (const auto& [pid, client] : proxy_.clients()) {
        auto it = index.find(client->pool());
        if (it == index.end() || !client->logged_in()) continue;
        if (client->waiting())
            ++rows[it->second].cl_waiting;
        else
            ++rows[it->second].cl_active;
    }
    return rows;
}

std::vector<admin::ClassRow> AdminService::classes() {
    std::vector<admin::ClassRow> rows;
    std::map<std::pair<const pool::Pool*, int>, size_t> index;
    for (const auto& [key, pool] : proxy_.pools().pools()) {
        const auto stats = pool->class_stats();
        for (size_t i = 0; i < stats.size(); ++i) {
            const auto& k = stats[i];
            admin::ClassRow r;
            r.database = key.first;
            r.user = key.second;
            r.name = k.name;
            r.priority = k.priority;
            r.max_share = k.max_share;
            r.cap = k.cap == INT_MAX ? 0 : k.cap;
            r.cl_waiting = k.waiting;
            r.sv_active = k.held;
            r.maxwait_us = k.max_wait.count();
            index[{pool.get(), static_cast<int>(i)}] = rows.size();
            rows.push_back(std::move(r));
        }
    }
    for (const auto& [pid, client] : proxy_.clients()) {
        if (!client->logged_in() || client->waiting()) continue;
        auto it = index.find({client->pool(), client->pool_class()});
        if (it != index.end()) ++rows[it->second].cl_active;
    }
    return rows;
}

std::vector<admin::BreakerRow> AdminService::breakers() {
    std::vector<admin::BreakerRow> rows;
    const auto now = std::chrono::steady_clock::now();
    for (auto& [name, b] : proxy_.pools().breakers()) {
        admin::BreakerRow r;
        r.database = name;
        r.state = pool::to_string(b.state());
        r.reason = b.reason();
        if (b.restarting() && b.state() == pool::BreakerState::kClosed) {
            // Unreachable or restarting, not exhausted: clients wait instead of being refused (issue 15).
            r.state = "restarting";
            r.reason = "database unreachable or restarting: " + b.outage_reason();
        }
        r.last_outage = b.last_outage();
        r.opens = b.opens();
        r.since_us =
            b.changed_at() == pool::CircuitBreaker::TimePoint{}
                ? 0
                : std::chrono::duration_cast<std::chrono::microseconds>(now - b.changed_at()).count();
        if (r.state == "restarting")
            r.since_us =
                std::chrono::duration_cast<std::chrono::microseconds>(now - b.outage_since()).count();
        rows.push_back(std::move(r));
    }
    return rows;
}

std::vector<admin::AdaptiveRow> AdminService::adaptive() {
    std::vector<admin::AdaptiveRow> rows;
    for (const auto& [key, pool] : proxy_.pools().pools()) {
        const auto a = pool->adaptive_stat();
        admin::AdaptiveRow r;
        r.database = key.first;
        r.user = key.second;
        r.enabled = a.enabled;
        r.limit = a.limit;
        r.min_limit = a.min_limit;
        r.budget = a.budget;
        r.budget_source = a.budget_from_view ? "dbview" : "pool_size";
        r.pool_size = a.pool_size;
        r.servers = a.servers;
        r.in_use = a.in_use;
        r.latency_ms = a.latency_us / 1000.0;
        r.long_latency_ms = a.long_latency_us / 1000.0;
        r.gradient = a.gradient;
        r.windows = a.windows;
        rows.push_back(std::move(r));
    }
    return rows;
}

std::vector<admin::ConnectionRow> AdminService::clients() {
    std::vector<admin::ConnectionRow> rows;
    const auto now = std::chrono::steady_clock::now();
    for (const auto& [pid, client] : proxy_.clients()) {
        admin::ConnectionRow r;
        r.type = "C";
        r.user = client->user();
        r.database = client->database();
        // PgBouncer 1.25: active = linked to a server, idle = between transactions, waiting = queued.
        r.state = !client->logged_in() ? "login"
                  : client->waiting()  ? "waiting"
                  : client->server()   ? "active"
                                       : "idle";
        r.addr = client->peer();
        r.port = client->peer_port();
        r.connect_time_unix = unix_seconds(client->connect_time());
        r.request_time_unix = unix_seconds(client->request_time());
        if (client->waiting())
            r.wait_us =
                std::chrono::duration_cast<std::chrono::microseconds>(now - client->wait_started()).count();
        r.ptr = client->id();
        r.link = client->server() ? client->server()->id() : 0;
        r.application_name = client->application_name();
        r.tls = client->tls_description();
        r.prepared_statements = static_cast<int>(client->prepared_count());
        r.replication = client->replication_mode();
        r.fd = client->client_socket().native_handle();
        r.cancel_key = client->cancel_key();
        rows.push_back(std::move(r));
    }
    return rows;
}

std::vector<admin::ConnectionRow> AdminService::servers() {
    std::vector<admin::ConnectionRow> rows;
    for (const auto& [key, pool] : proxy_.pools().pools()) {
        pool->for_each_server([&](const pool::ServerConnection& s) {
            admin::ConnectionRow r;
            r.type = "S";
            r.user = pool->settings().target.user;
            r.database = key.first;
            r.state = s.testing() ? "tested" : server_state(s.state());
            r.addr = s.host().empty() ? "unix" : s.host();
            r.port = s.port();
            r.connect_time_unix = steady_to_unix(s.created_at());
            r.request_time_unix = steady_to_unix(s.last_used());
            r.close_needed = s.close_needed();
            r.ptr = s.id();
            r.link = s.linked_client() ? s.linked_client_id() : 0;
            r.remote_pid = s.backend_pid();
            r.tls = s.tls_description();
            auto app = s.parameters().find("application_name");
            if (app != s.parameters().end()) r.application_name = app->second;
            r.prepared_statements = static_cast<int>(s.prepared_count());
            rows.push_back(std::move(r));
        });
    }
    return rows;
}

std::vector<admin::StatsRow> AdminService::stats_totals() {
    std::map<std::string, admin::StatsRow> by_db;
    for (const auto& [key, pool] : proxy_.pools().pools()) {
        auto& r = by_db[key.first];
        r.database = key.first;
        const auto& st = pool->stats();
        r.xact_count += st.xact_count;
        r.query_count += st.query_count;
        r.bytes_received += st.bytes_received;
        r.bytes_sent += st.bytes_sent;
        r.xact_time_us += st.xact_time_us;
        r.query_time_us += st.query_time_us;
        r.wait_time_us += st.wait_time_us;
        r.server_assignment_count += st.server_assignment_count;
        r.client_parse_count += st.client_parse_count;
        r.server_parse_count += st.server_parse_count;
        r.bind_count += st.bind_count;
    }
    std::vector<admin::StatsRow> rows;
    for (auto& [db, r] : by_db)
        rows.push_back(r);
    return rows;
}

void AdminService::roll_stats_period() {
    const auto now = std::chrono::steady_clock::now();
    const double secs = std::chrono::duration<double>(now - period_start_).count();
    if (secs <= 0) return;
    averages_.clear();
    for (const auto& r : stats_totals()) {
        const auto& prev = previous_[r.database];
        admin::StatsRow a;
        a.database = r.database;
        auto rate = [&](uint64_t cur, uint64_t old) {
            return static_cast<uint64_t>(static_cast<double>(cur - std::min(cur, old)) / secs);
        };
        a.xact_count = rate(r.xact_count, prev.xact_count);
        a.query_count = rate(r.query_count, prev.query_count);
        a.bytes_received = rate(r.bytes_received, prev.bytes_received);
        a.bytes_sent = rate(r.bytes_sent, prev.bytes_sent);
        a.xact_time_us = rate(r.xact_time_us, prev.xact_time_us);
        a.query_time_us = rate(r.query_time_us, prev.query_time_us);
        a.wait_time_us = rate(r.wait_time_us, prev.wait_time_us);
        a.server_assignment_count = rate(r.server_assignment_count, prev.server_assignment_count);
        a.client_parse_count = rate(r.client_parse_count, prev.client_parse_count);
        a.server_parse_count = rate(r.server_parse_count, prev.server_parse_count);
        a.bind_count = rate(r.bind_count, prev.bind_count);
        averages_[r.database] = a;
        previous_[r.database] = r;
    }
    period_start_ = now;
    // The line goes to the log with log_stats, and to the service manager's STATUS= always (as PgBouncer).
    if (proxy_.config().log_stats || proxy_.wants_stats_line()) {
        std::vector<admin::StatsRow> rates;
        for (const auto& [db, a] : averages_)
            rates.push_back(a);
        const std::string line = admin::stats_log_line(rates);
        if (proxy_.config().log_stats) spdlog::info("{}", line);
        proxy_.stats_line(line);
    }
}

std::vector<admin::StatsRow> AdminService::stats_averages() {
    std::vector<admin::StatsRow> rows;
    for (const auto& r : stats_totals()) {
        auto it = averages_.find(r.database);
        if (it != averages_.end()) {
            rows.push_back(it->second);
        } else {
            admin::StatsRow zero;
            zero.database = r.database;
            rows.push_back(zero);
        }
    }
    return rows;
}

std::vector<admin::DatabaseRow> AdminService::databases() {
    const auto& cfg = proxy_.config();
    std::vector<admin::DatabaseRow> rows;
    for (const auto& db : cfg.databases) {
        admin::DatabaseRow r;
        r.name = db.name;
        r.host = db.host;
        r.port = db.port;
        r.database = db.dbname.empty() ? db.name : db.dbname;
        r.force_user = db.user;
        r.pool_size = cfg.effective_pool_size(db);
        r.min_pool_size = cfg.effective_min_pool_size(db);
        r.reserve_pool = cfg.effective_reserve_pool_size(db);
        if (db.pool_mode) r.pool_mode = config::to_string(*db.pool_mode);
        r.max_connections = cfg.effective_max_db_connections(db);
        r.current_connections = proxy_.pools().database_server_count(db.name);
        r.paused = proxy_.database_paused(db.name);
        r.disabled = proxy_.database_disabled(db.name);
        r.server_lifetime_s =
            std::chrono::duration_cast<std::chrono::seconds>(cfg.effective_server_lifetime(db)).count();
        // PgBouncer 1.25 shows it only for a host list (NULL for one host).
        if (db.host.find(',') != std::string::npos)
            r.load_balance_hosts = db.load_balance_round_robin ? "round-robin" : "disable";
        r.max_client_connections = cfg.effective_max_db_client_connections(db);
        r.current_client_connections = proxy_.client_caps().database_count(db.name);
        rows.push_back(std::move(r));
    }
    return rows;
}

std::vector<admin::UserRow> AdminService::users() {
    const auto& cfg = proxy_.config();
    // Like PgBouncer: the users of [users], of the auth_file and of the pools, by name.
    std::map<std::string, const config::UserConfig*> known;
    for (const auto& u : cfg.users)
        known[u.name] = &u;
    for (const auto& [name, secret] : proxy_.auth_file_secrets())
        known.try_emplace(name, nullptr);
    for (const auto& [key, pool] : proxy_.pools().pools())
        known.try_emplace(key.second, nullptr);
    std::vector<admin::UserRow> rows;
    for (const auto& [name, u] : known) {
        admin::UserRow r;
        r.name = name;
        if (u != nullptr && u->pool_mode) r.pool_mode = config::to_string(*u->pool_mode);
        r.max_user_connections = cfg.effective_max_user_connections(u);
        r.current_connections = proxy_.pools().user_server_count(name);
        if (u != nullptr) {
            r.pool_size = u->pool_size.value_or(0);
            r.reserve_pool_size = u->reserve_pool_size.value_or(0);
        }
        r.max_user_client_connections = cfg.effective_max_user_client_connections(u);
        r.current_client_connections = proxy_.client_caps().user_count(name);
        rows.push_back(std::move(r));
    }
    return rows;
}

std::vector<AdminService::ConfigRow> AdminService::config_rows() {
    std::vector<ConfigRow> rows;
    for (auto& d : config::describe_parameters(proxy_.config()))
        rows.push_back(ConfigRow{d.key, d.value, d.default_value, d.changeable});
    return rows;
}

std::vector<std::pair<std::string, int64_t>> AdminService::lists() {
    int64_t used_clients = 0, login_clients = 0, used_servers = 0, free_servers = 0;
    for (const auto& [pid, c] : proxy_.clients()) {
        if (c->logged_in())
            ++used_clients;
        else
            ++login_clients;
    }
    for (const auto& [key, pool] : proxy_.pools().pools()) {
        const auto c = pool->counters();
        used_servers += c.active + c.idle + c.cleanup + c.tested + c.connecting;
        free_servers += 0;
    }
    return {{"databases", static_cast<int64_t>(proxy_.config().databases.size())},
            {"users", static_cast<int64_t>(users().size())},
            {"peers", static_cast<int64_t>(peers().size())},
            {"pools", static_cast<int64_t>(proxy_.pools().pools().size())},
            {"peer_pools", static_cast<int64_t>(proxy_.peer_cancels().counters().size())},
            {"free_clients", 0},
            {"used_clients", used_clients},
            {"login_clients", login_clients},
            {"free_servers", free_servers},
            {"used_servers", used_servers},
            {"dns_names", 0},
            {"dns_zones", 0},
            {"dns_queries", 0},
            {"dns_pending", 0}};
}

std::string AdminService::version() {
    // Starts like PgBouncer's own answer, for tools that parse it (pgbouncer_exporter).
    return std::string("PgBouncer 1.25.2 compatible; poolguard ") + POOLGUARD_VERSION;
}

std::vector<std::pair<std::string, std::string>> AdminService::state() {
    return {{"active", proxy_.shutting_down() ? "no" : "yes"},
            {"paused", proxy_.database_paused("") ? "yes" : "no"},
            {"suspended", suspended_ ? "yes" : "no"}};
}

Status AdminService::check_database(const std::string& database) const {
    if (database.empty()) return {};
    if (database == "pgbouncer" || database == "poolguard")
        return fail("cannot pause/kill the admin database", "08P01");
    if (!proxy_.config().find_database(database)) return fail("no such database: " + database, "3D000");
    return {};
}

Status AdminService::set(const std::string& key, const std::string& value) {
    // Responder modes (issue 6) take effect in the guard at once; the configuration copy below keeps
    // SHOW CONFIG in step.
    if (respond::GuardRegistry::is_guard_key(key))
        if (auto st = respond::guard().set(key, value); !st) return st;
    auto copy = std::make_shared<config::Config>(proxy_.config());
    if (auto st = config::set_parameter(*copy, key, value); !st) return st;
    // A TLS setting is checked as a reload checks it: a file that cannot be read or a mode that lacks its
    // files refuses the SET (the old value and contexts stay), never a value SHOW CONFIG shows but TLS
    // ignores. PgBouncer 1.25.2 stores the value and only sends a NOTICE.
    const std::string lowered = config::to_lower(key);
    if (lowered.starts_with("client_tls") || lowered.starts_with("server_tls"))
        if (auto tls = net::build_tls_contexts(*copy); !tls)
            return fail("SET " + lowered + " failed, the old value stays: " + tls.error().message, "22023");
    proxy_.apply_config(copy);
    spdlog::info("admin SET {} = {}", key, value);
    return {};
}

Status AdminService::pause(const std::string& database) {
    if (auto st = check_database(database); !st) return st;
    proxy_.set_paused(database, true);
    return {};
}

Status AdminService::resume(const std::string& database) {
    if (auto st = check_database(database); !st) return st;
    if (database.empty()) suspended_ = false;
    proxy_.set_paused(database, false);
    return {};
}

Status AdminService::disable(const std::string& database) {
    if (auto st = check_database(database); !st) return st;
    proxy_.set_disabled(database, true);
    return {};
}

Status AdminService::enable(const std::string& database) {
    if (auto st = check_database(database); !st) return st;
    proxy_.set_disabled(database, false);
    return {};
}

Status AdminService::reload() {
    return proxy_.reload();
}

Status AdminService::kill(const std::string& database) {
    if (auto st = check_database(database); !st) return st;
    // As PgBouncer: drop every client and server of the database (of every database but the admin console's
    // without one), and hold new ones until RESUME. KILL without a database pauses each database by name,
    // so that RESUME of one releases it.
    std::set<std::string> killed;
    if (!database.empty()) {
        killed.insert(database);
    } else {
        for (const auto& db : proxy_.config().databases)
            killed.insert(db.name);
        for (const auto& [key, pool] : proxy_.pools().pools())
            killed.insert(key.first);
    }
    for (const auto& name : killed)
        proxy_.set_paused(name, true);
    std::vector<ClientSession*> victims;
    for (const auto& [pid, c] : proxy_.clients())
        if (!c->is_admin() && killed.contains(c->database())) victims.push_back(c);
    for (auto* c : victims)
        c->kill("database " + c->database() + " was killed by an administrator");
    for (const auto& [key, pool] : proxy_.pools().pools())
        if (killed.contains(key.first)) pool->close_all("KILL " + (database.empty() ? "(all)" : database));
    return {};
}

Status AdminService::kill_client(uint64_t client_id) {
    for (const auto& [pid, c] : proxy_.clients()) {
        if (c->id() == client_id) {
            c->kill("client killed by an administrator (KILL_CLIENT)");
            return {};
        }
    }
    return fail("client not found", "08P01");
}

Status AdminService::reconnect(const std::string& database) {
    if (auto st = check_database(database); !st) return st;
    for (const auto& [key, pool] : proxy_.pools().pools())
        if (database.empty() || key.first == database) pool->reconnect_all();
    return {};
}

Status AdminService::wait_close(const std::string& database) {
    // The console waits afterwards, in the admin session's coroutine, for close_needed_servers() to reach 0.
    return check_database(database);
}

int AdminService::unflushed_clients() {
    int n = 0;
    for (const auto& [pid, c] : proxy_.clients())
        n += !c->is_admin() && c->client_write_gate().busy() ? 1 : 0;
    return n;
}

void AdminService::drop_unflushed_clients() {
    std::vector<ClientSession*> victims;
    for (const auto& [pid, c] : proxy_.clients())
        if (!c->is_admin() && c->client_write_gate().busy()) victims.push_back(c);
    for (auto* c : victims)
        c->kill("SUSPEND: output not flushed within suspend_timeout");
    if (!victims.empty())
        spdlog::info("SUSPEND: closed {} clients whose output did not flush", victims.size());
}

std::chrono::milliseconds AdminService::suspend_timeout() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(proxy_.config().suspend_timeout);
}

int AdminService::close_needed_servers(const std::string& database) {
    int n = 0;
    for (const auto& [key, pool] : proxy_.pools().pools()) {
        if (!database.empty() && key.first != database) continue;
        pool->for_each_server([&](const pool::ServerConnection& s) { n += s.close_needed() ? 1 : 0; });
    }
    return n;
}

Status AdminService::shutdown() {
    spdlog::info("SHUTDOWN from the admin console");
    proxy_.shutdown_now();
    return {};
}

Status AdminService::shutdown_waiting(bool for_clients) {
    spdlog::info("SHUTDOWN {} from the admin console", for_clients ? "WAIT_FOR_CLIENTS" : "WAIT_FOR_SERVERS");
    proxy_.begin_shutdown(for_clients ? Proxy::ShutdownMode::kWaitForClients
                                      : Proxy::ShutdownMode::kWaitForServers);
    return {};
}

Status AdminService::suspend() {
    // SUSPEND holds new client work like PAUSE of every database, and SHOW STATE says suspended until
    // RESUME; the console then waits for output still being written to clients (suspend_timeout).
    suspended_ = true;
    proxy_.set_paused("", true);
    return {};
}

std::vector<admin::PeerRow> AdminService::peers() {
    const auto& cfg = proxy_.config();
    std::vector<admin::PeerRow> rows;
    for (const auto& p : cfg.peers)
        rows.push_back(
            admin::PeerRow{p.peer_id, p.host, p.port, p.pool_size.value_or(cfg.default_pool_size)});
    return rows;
}

std::vector<admin::PeerPoolRow> AdminService::peer_pools() {
    std::vector<admin::PeerPoolRow> rows;
    for (const auto& [id, n] : proxy_.peer_cancels().counters())
        rows.push_back(admin::PeerPoolRow{id, n.active, n.waiting, n.active, n.login});
    return rows;
}

std::vector<admin::FdRow> AdminService::listener_fds() {
    std::vector<admin::FdRow> rows;
    for (const auto& l : proxy_.listeners())
        rows.push_back(admin::FdRow{.fd = l.fd, .task = "pooler", .addr = l.addr, .port = l.port});
    return rows;
}

std::vector<admin::GuardRow> AdminService::guard_rows() {
    std::vector<admin::GuardRow> out;
    for (auto& r : respond::guard().rows())
        out.push_back(admin::GuardRow{r.component, r.name, r.mode, r.state, r.detail});
    // Classes and breakers live in the pools, on this (the io) thread: read them directly.
    for (const auto& c : classes())
        out.push_back(admin::GuardRow{
            "class", fmt::format("{}/{}/{}", c.database, c.user, c.name), "",
            c.cl_waiting > 0 ? "waiting" : "ok",
            fmt::format("priority={} max_share={}% cap={} servers={} active={} waiting={} maxwait={:.1f}s",
                        c.priority, c.max_share, c.cap, c.sv_active, c.cl_active, c.cl_waiting,
                        static_cast<double>(c.maxwait_us) / 1e6)});
    for (const auto& a : adaptive()) {
        if (!a.enabled) continue;
        out.push_back(admin::GuardRow{
            "adaptive", fmt::format("{}/{}", a.database, a.user), "on",
            a.limit >= a.budget ? "at budget" : "ok",
            fmt::format("limit={} min={} budget={} ({}) servers={} latency={:.2f}ms long={:.2f}ms", a.limit,
                        a.min_limit, a.budget, a.budget_source, a.servers, a.latency_ms, a.long_latency_ms)});
    }
    for (const auto& b : breakers())
        out.push_back(admin::GuardRow{
            "breaker", b.database, "", b.state,
            fmt::format("opens={} for {:.1f}s{}{}", b.opens, static_cast<double>(b.since_us) / 1e6,
                        b.reason.empty() ? "" : "; last opened: ", b.reason)});
    return out;
}

}  // namespace poolguard::session
