// Owns the PostgreSQL sampler: the pg_stat_activity query, its row → Session mapping, connection handling
// and the backend-signalling functions.
#include "dbview/pg_sampler.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>

namespace poolguard::dbview {

namespace {

constexpr const char* kApplicationName = "poolguard-dbview";

// Settings that do not change while a connection lives (max_connections needs a restart).
// reserved_connections exists from PostgreSQL 16; current_setting(..., true) yields NULL before that.
constexpr const char* kSettingsQuery =
    "SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int, "
    "coalesce(current_setting('reserved_connections', true), '0')::int, current_setting('server_version'), "
    "pg_backend_pid()";

// One row per backend. Ages come from the server's clock (no client/server skew). The role join tells
// superusers apart; a backend with no role (background workers) gets NULL → false.
constexpr const char* kActivityQuery =
    "SELECT a.pid, coalesce(a.usename, ''), coalesce(a.datname, ''), coalesce(a.application_name, ''), "
    "coalesce(host(a.client_addr), ''), coalesce(a.state, ''), coalesce(left(a.query, 1024), ''), "
    "extract(epoch FROM now() - a.backend_start), extract(epoch FROM now() - a.xact_start), "
    "extract(epoch FROM now() - a.query_start), extract(epoch FROM now() - a.state_change), "
    "coalesce(r.rolsuper, false), coalesce(a.backend_type, ''), a.pid = pg_backend_pid() "
    "FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid ORDER BY a.pid";

struct ResultDeleter {
    void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

void ignore_notice(void*, const char*) {}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\r'))
        s.pop_back();
    return s;
}

// libpq error text can span lines ("connection to server ... failed: FATAL:  ..."); keep one line.
std::string one_line(std::string s) {
    s = trim(std::move(s));
    std::replace(s.begin(), s.end(), '\n', ' ');
    std::replace(s.begin(), s.end(), '\t', ' ');
    std::string out;
    for (char c : s) {
        if (c == ' ' && !out.empty() && out.back() == ' ') continue;
        out.push_back(c);
    }
    return out;
}

std::optional<double> opt_double(PGresult* r, int row, int col) {
    if (PQgetisnull(r, row, col)) return std::nullopt;
    const char* v = PQgetvalue(r, row, col);
    try {
        return std::stod(v);
    } catch (...) {
        return std::nullopt;
    }
}

int64_t to_int64(const char* v) {
    int64_t out = 0;
    std::from_chars(v, v + std::strlen(v), out);
    return out;
}

SessionState parse_state(std::string_view s) {
    if (s == "active") return SessionState::active;
    if (s == "idle") return SessionState::idle;
    if (s == "idle in transaction") return SessionState::idle_in_transaction;
    if (s == "idle in transaction (aborted)") return SessionState::idle_in_transaction_aborted;
    if (s == "fastpath function call") return SessionState::fastpath;
    if (s == "disabled") return SessionState::disabled;
    return SessionState::other;  // NULL state: another role's backend seen without pg_read_all_stats
}

Error query_error(PGconn* conn, PGresult* res, const std::string& what) {
    std::string state;
    if (res != nullptr)
        if (const char* s = PQresultErrorField(res, PG_DIAG_SQLSTATE)) state = s;
    std::string msg = res != nullptr ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    if (msg.empty()) msg = PQerrorMessage(conn);
    if (state.empty() && PQstatus(conn) == CONNECTION_BAD) state = sqlstate::kConnectionFailure;
    return Error::make(what + ": " + one_line(msg), state);
}

}  // namespace

struct PgSampler::Connection {
    PGconn* conn = nullptr;
    int max_connections = 0;
    int reserved_connections = 0;
    std::string server_version;
    int64_t own_pid = 0;
    ~Connection() {
        if (conn != nullptr) PQfinish(conn);
    }
};

std::string sqlstate_from_connect_message(const std::string& message) {
    auto has = [&](std::string_view needle) { return message.find(needle) != std::string::npos; };
    if (has("password authentication failed") || has("no password supplied") || has("SCRAM authentication") ||
        has("password is required"))
        return sqlstate::kInvalidPassword;
    if (has("too many clients already") || has("remaining connection slots are reserved") ||
        has("too many connections for role") || has("too many connections for database"))
        return sqlstate::kTooManyConnections;
    if (has("no pg_hba.conf entry") || has("is not permitted to log in") ||
        (has("role \"") && has("does not exist")))
        return sqlstate::kInvalidAuthorization;
    if (has("database \"") && has("does not exist")) return sqlstate::kInvalidCatalogName;
    if (has("invalid connection option") || has("invalid integer value") || has("missing \"=\"") ||
        has("invalid URI") || has("invalid sslmode value") || has("unterminated quoted string"))
        return "22023";  // the conninfo itself is wrong
    if (has("the database system is starting up") || has("the database system is shutting down"))
        return "57P03";
    if (has("Connection refused") || has("could not translate host name") || has("timeout expired") ||
        has("No route to host") || has("Network is unreachable") || has("could not connect") ||
        has("No such file or directory"))
        return "08001";
    return {};
}

PgSampler::PgSampler(std::string conninfo) : conninfo_(std::move(conninfo)) {}
PgSampler::~PgSampler() = default;
PgSampler::PgSampler(PgSampler&&) noexcept = default;
PgSampler& PgSampler::operator=(PgSampler&&) noexcept = default;

void PgSampler::disconnect() {
    conn_.reset();
}

std::optional<int64_t> PgSampler::own_pid() const {
    if (!conn_) return std::nullopt;
    return conn_->own_pid;
}

Status PgSampler::ensure_connected() {
    if (conn_ && PQstatus(conn_->conn) == CONNECTION_OK) return {};
    disconnect();
    // connect_timeout comes before dbname so a value in the conninfo/URI overrides it; application_name
    // comes after so our own connection is always recognisable in pg_stat_activity.
    const char* keywords[] = {"connect_timeout", "dbname", "application_name", nullptr};
    const char* values[] = {"5", conninfo_.c_str(), kApplicationName, nullptr};
    auto c = std::make_unique<Connection>();
    c->conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
    if (c->conn == nullptr) return fail("cannot connect to PostgreSQL: out of memory");
    if (PQstatus(c->conn) != CONNECTION_OK) {
        std::string msg = one_line(PQerrorMessage(c->conn));
        return fail("cannot connect to PostgreSQL: " + msg, sqlstate_from_connect_message(msg));
    }
    PQsetNoticeProcessor(c->conn, ignore_notice, nullptr);
    ResultPtr res(PQexec(c->conn, kSettingsQuery));
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK || PQntuples(res.get()) != 1)
        return std::unexpected(query_error(c->conn, res.get(), "reading max_connections"));
    c->max_connections = static_cast<int>(to_int64(PQgetvalue(res.get(), 0, 0)));
    c->reserved_connections =
        static_cast<int>(to_int64(PQgetvalue(res.get(), 0, 1)) + to_int64(PQgetvalue(res.get(), 0, 2)));
    c->server_version = PQgetvalue(res.get(), 0, 3);
    c->own_pid = to_int64(PQgetvalue(res.get(), 0, 4));
    conn_ = std::move(c);
    return {};
}

Result<Snapshot> PgSampler::sample() {
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = conn_ && PQstatus(conn_->conn) == CONNECTION_OK;
        if (auto st = ensure_connected(); !st) return std::unexpected(st.error());
        Snapshot snap;
        snap.engine = Engine::postgres;
        snap.taken_at = std::chrono::system_clock::now();
        ResultPtr res(PQexec(conn_->conn, kActivityQuery));
        if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
            auto err = query_error(conn_->conn, res.get(), "reading pg_stat_activity");
            const bool broken = PQstatus(conn_->conn) == CONNECTION_BAD;
            if (broken) disconnect();
            if (broken && reused) continue;  // the server restarted or dropped us while idle: reconnect once
            return std::unexpected(err);
        }
        snap.server_version = conn_->server_version;
        snap.max_connections = conn_->max_connections;
        snap.reserved_connections = conn_->reserved_connections;
        const int rows = PQntuples(res.get());
        snap.sessions.reserve(static_cast<size_t>(rows));
        for (int i = 0; i < rows; ++i) {
            PGresult* r = res.get();
            Session s;
            s.id = to_int64(PQgetvalue(r, i, 0));
            s.user = PQgetvalue(r, i, 1);
            s.database = PQgetvalue(r, i, 2);
            s.application = PQgetvalue(r, i, 3);
            s.client_addr = PQgetvalue(r, i, 4);
            s.state_text = PQgetvalue(r, i, 5);
            s.state = parse_state(s.state_text);
            s.query = PQgetvalue(r, i, 6);
            s.backend_age_s = opt_double(r, i, 7);
            s.xact_age_s = opt_double(r, i, 8);
            s.query_age_s = opt_double(r, i, 9);
            s.state_age_s = opt_double(r, i, 10);
            s.superuser = std::string_view(PQgetvalue(r, i, 11)) == "t";
            s.backend_type = PQgetvalue(r, i, 12);
            s.own = std::string_view(PQgetvalue(r, i, 13)) == "t";
            s.replication = s.backend_type == "walsender";
            s.system = s.backend_type != "client backend" && !s.replication;
            snap.sessions.push_back(std::move(s));
        }
        return snap;
    }
    return fail("cannot reach PostgreSQL after reconnecting", sqlstate::kConnectionFailure);
}

Status PgSampler::signal_backend(const char* function, int64_t pid) {
    if (auto st = ensure_connected(); !st) return st;
    const std::string pid_text = std::to_string(pid);
    const char* params[] = {pid_text.c_str()};
    const std::string sql = std::string("SELECT ") + function + "($1::int)";
    ResultPtr res(PQexecParams(conn_->conn, sql.c_str(), 1, nullptr, params, nullptr, nullptr, 0));
    if (PQresultStatus(res.get()) != PGRES_TUPLES_OK) {
        auto err = query_error(conn_->conn, res.get(), std::string(function) + "(" + pid_text + ")");
        if (PQstatus(conn_->conn) == CONNECTION_BAD) disconnect();
        return std::unexpected(err);
    }
    if (std::string_view(PQgetvalue(res.get(), 0, 0)) != "t")
        return fail(std::string(function) + "(" + pid_text + "): no such backend (it has already ended?)");
    return {};
}

Status PgSampler::cancel_backend(int64_t pid) {
    return signal_backend("pg_cancel_backend", pid);
}
Status PgSampler::terminate_backend(int64_t pid) {
    return signal_backend("pg_terminate_backend", pid);
}

}  // namespace poolguard::dbview
