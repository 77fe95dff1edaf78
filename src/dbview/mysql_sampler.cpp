// Owns the MySQL/MariaDB sampler: connection set-up, the PROCESSLIST ⟕ INNODB_TRX query and its mapping to
// Sessions, and KILL [QUERY].
#include "dbview/mysql_sampler.h"

#include <mysql.h>

#include <charconv>
#include <cstring>
#include <set>
#include <string_view>

namespace poolguard::dbview {

namespace {

constexpr const char* kProgramName = "poolguard-dbview";

constexpr const char* kActivityQuery =
    "SELECT p.ID, coalesce(p.USER, ''), coalesce(p.HOST, ''), coalesce(p.DB, ''), coalesce(p.COMMAND, ''), "
    "p.TIME, coalesce(p.STATE, ''), coalesce(left(p.INFO, 1024), ''), t.trx_mysql_thread_id IS NOT NULL, "
    "timestampdiff(MICROSECOND, t.trx_started, now(6)) / 1000000, p.ID = connection_id() "
    "FROM information_schema.PROCESSLIST p "
    "LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID ORDER BY p.ID";

struct ResultDeleter {
    void operator()(MYSQL_RES* r) const { mysql_free_result(r); }
};
using ResultPtr = std::unique_ptr<MYSQL_RES, ResultDeleter>;

int64_t to_int64(const char* v) {
    int64_t out = 0;
    if (v != nullptr) std::from_chars(v, v + std::strlen(v), out);
    return out;
}

std::optional<double> opt_double(const char* v) {
    if (v == nullptr) return std::nullopt;
    try {
        return std::stod(v);
    } catch (...) {
        return std::nullopt;
    }
}

std::string str(const char* v) {
    return v != nullptr ? v : "";
}

Error mysql_failure(MYSQL* m, const std::string& what) {
    return Error::make(what + ": " + mysql_error(m) + " (MySQL error " + std::to_string(mysql_errno(m)) + ")",
                       std::to_string(mysql_errno(m)));
}

bool is_connection_lost(unsigned code) {
    return code == 2006 /* server gone away */ || code == 2013 /* lost connection */ || code == 2055;
}

}  // namespace

struct MysqlSampler::Connection {
    MYSQL* mysql = nullptr;
    int max_connections = 0;
    std::string server_version;
    int64_t own_id = 0;
    std::set<std::string> super_users;
    ~Connection() {
        if (mysql != nullptr) mysql_close(mysql);
    }
};

MysqlSampler::MysqlSampler(std::string dsn) : dsn_text_(std::move(dsn)) {}
MysqlSampler::~MysqlSampler() = default;
MysqlSampler::MysqlSampler(MysqlSampler&&) noexcept = default;
MysqlSampler& MysqlSampler::operator=(MysqlSampler&&) noexcept = default;

std::optional<int64_t> MysqlSampler::own_pid() const {
    if (!conn_) return std::nullopt;
    return conn_->own_id;
}

Status MysqlSampler::ensure_connected() {
    if (conn_) return {};
    auto dsn = parse_dsn(dsn_text_);
    if (!dsn) return std::unexpected(dsn.error());
    if (dsn->engine != Engine::mysql) return fail("not a mysql:// DSN: " + dsn->redacted());
    auto c = std::make_unique<Connection>();
    c->mysql = mysql_init(nullptr);
    if (c->mysql == nullptr) return fail("cannot connect to MySQL: out of memory");
    unsigned connect_timeout = 5;
    unsigned read_timeout = 30;
    if (auto it = dsn->params.find("connect_timeout"); it != dsn->params.end())
        connect_timeout = static_cast<unsigned>(to_int64(it->second.c_str()));
    mysql_options(c->mysql, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout);
    mysql_options(c->mysql, MYSQL_OPT_READ_TIMEOUT, &read_timeout);
    mysql_options(c->mysql, MYSQL_OPT_WRITE_TIMEOUT, &read_timeout);
    mysql_options(c->mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_optionsv(c->mysql, MYSQL_OPT_CONNECT_ATTR_ADD, "program_name", kProgramName);
    std::string host = dsn->host.empty() ? "localhost" : dsn->host;
    std::string socket;
    if (auto it = dsn->params.find("socket"); it != dsn->params.end()) socket = it->second;
    if (!host.empty() && host.front() == '/') {
        socket = host;
        host = "localhost";
    }
    if (mysql_real_connect(c->mysql, host.c_str(), dsn->user.empty() ? nullptr : dsn->user.c_str(),
                           dsn->password.c_str(), dsn->database.empty() ? nullptr : dsn->database.c_str(),
                           static_cast<unsigned>(dsn->port_or_default()),
                           socket.empty() ? nullptr : socket.c_str(), 0) == nullptr)
        return std::unexpected(mysql_failure(c->mysql, "cannot connect to MySQL"));
    c->server_version = mysql_get_server_info(c->mysql);
    c->own_id = static_cast<int64_t>(mysql_thread_id(c->mysql));
    if (mysql_query(c->mysql, "SELECT @@max_connections") != 0)
        return std::unexpected(mysql_failure(c->mysql, "reading max_connections"));
    if (ResultPtr res(mysql_store_result(c->mysql)); res) {
        if (MYSQL_ROW row = mysql_fetch_row(res.get()))
            c->max_connections = static_cast<int>(to_int64(row[0]));
    }
    // Which accounts hold SUPER: readable by admins only; without it assume "root" is the superuser.
    if (mysql_query(c->mysql, "SELECT DISTINCT User FROM mysql.user WHERE Super_priv = 'Y'") == 0) {
        if (ResultPtr res(mysql_store_result(c->mysql)); res)
            while (MYSQL_ROW row = mysql_fetch_row(res.get()))
                c->super_users.insert(str(row[0]));
    } else {
        c->super_users.insert("root");
    }
    conn_ = std::move(c);
    return {};
}

Result<Snapshot> MysqlSampler::sample() {
    for (int attempt = 0; attempt < 2; ++attempt) {
        const bool reused = static_cast<bool>(conn_);
        if (auto st = ensure_connected(); !st) return std::unexpected(st.error());
        Snapshot snap;
        snap.engine = Engine::mysql;
        snap.taken_at = std::chrono::system_clock::now();
        if (mysql_query(conn_->mysql, kActivityQuery) != 0) {
            auto err = mysql_failure(conn_->mysql, "reading PROCESSLIST");
            const bool lost = is_connection_lost(mysql_errno(conn_->mysql));
            if (lost) conn_.reset();
            if (lost && reused) continue;
            return std::unexpected(err);
        }
        ResultPtr res(mysql_store_result(conn_->mysql));
        if (!res) return std::unexpected(mysql_failure(conn_->mysql, "reading PROCESSLIST"));
        snap.server_version = conn_->server_version;
        snap.max_connections = conn_->max_connections;
        snap.reserved_connections = 0;  // see the class comment
        while (MYSQL_ROW row = mysql_fetch_row(res.get())) {
            Session s;
            s.id = to_int64(row[0]);
            s.user = str(row[1]);
            s.client_addr = str(row[2]);
            // "10.0.0.7:51234" → "10.0.0.7"; "localhost" (socket) → "".
            if (auto colon = s.client_addr.rfind(':'); colon != std::string::npos)
                s.client_addr.resize(colon);
            if (s.client_addr == "localhost") s.client_addr.clear();
            s.database = str(row[3]);
            s.backend_type = str(row[4]);
            const auto time_s = opt_double(row[5]);
            const std::string thread_state = str(row[6]);
            s.query = str(row[7]);
            const bool in_trx = std::string_view(str(row[8])) == "1";
            s.xact_age_s = opt_double(row[9]);
            s.own = std::string_view(str(row[10])) == "1";
            const std::string& command = s.backend_type;
            s.replication = command.starts_with("Binlog Dump");
            s.system = !s.replication && (command == "Daemon" || command.starts_with("Slave_") ||
                                          s.user == "system user" || s.user == "event_scheduler");
            s.superuser = conn_->super_users.contains(s.user);
            s.state_age_s = time_s;
            if (command == "Sleep") {
                s.state = in_trx ? SessionState::idle_in_transaction : SessionState::idle;
                s.state_text = in_trx ? "Sleep (in transaction)" : "Sleep";
            } else if (command == "Query" || command == "Execute" || command == "Fetch" ||
                       command == "Prepare" || command == "Long Data") {
                s.state = SessionState::active;
                s.query_age_s = time_s;
                s.state_text = thread_state.empty() ? command : command + " (" + thread_state + ")";
            } else {
                s.state = SessionState::other;
                s.state_text = command;
            }
            snap.sessions.push_back(std::move(s));
        }
        return snap;
    }
    return fail("cannot reach MySQL after reconnecting", "2013");
}

Status MysqlSampler::run_kill(const std::string& verb, int64_t id) {
    if (auto st = ensure_connected(); !st) return st;
    const std::string sql = verb + " " + std::to_string(id);
    if (mysql_query(conn_->mysql, sql.c_str()) != 0) {
        auto err = mysql_failure(conn_->mysql, sql);
        if (is_connection_lost(mysql_errno(conn_->mysql))) conn_.reset();
        return std::unexpected(err);
    }
    return {};
}

Status MysqlSampler::cancel_backend(int64_t id) {
    return run_kill("KILL QUERY", id);
}
Status MysqlSampler::terminate_backend(int64_t id) {
    return run_kill("KILL", id);
}

}  // namespace poolguard::dbview
