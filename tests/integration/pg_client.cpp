// Owns the test client side: RAII libpq wrapper with deadlines, raw wire-protocol client, pgbench runner.
#include "pg_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <sstream>

namespace itest {

// ---- QueryResult ----------------------------------------------------------------------------------------

bool QueryResult::ok() const {
    switch (status) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
        case PGRES_COPY_IN:
        case PGRES_COPY_OUT:
        case PGRES_SINGLE_TUPLE:
        case PGRES_PIPELINE_SYNC:
            return !timed_out && sqlstate.empty() && error.empty();
        default:
            return false;
    }
}

const std::string& QueryResult::value(size_t row, size_t col) const {
    static const std::string empty;
    if (row >= rows.size() || col >= rows[row].size()) return empty;
    return rows[row][col];
}

std::string QueryResult::describe() const {
    std::ostringstream ss;
    ss << "status=" << PQresStatus(status) << " sqlstate=" << (sqlstate.empty() ? "-" : sqlstate)
       << " error=\"" << error << "\" rows=" << rows.size() << " elapsed_ms=" << elapsed_ms;
    if (timed_out) ss << " TIMED_OUT";
    if (connection_lost) ss << " CONNECTION_LOST";
    if (!rows.empty() && !rows[0].empty()) ss << " first=\"" << rows[0][0] << "\"";
    return ss.str();
}

// ---- PgConn ---------------------------------------------------------------------------------------------

PgConn::PgConn(PgConn&& other) noexcept
    : conn_(std::exchange(other.conn_, nullptr)),
      connect_error_(std::move(other.connect_error_)),
      connect_ms_(other.connect_ms_) {}

PgConn& PgConn::operator=(PgConn&& other) noexcept {
    if (this != &other) {
        close();
        conn_ = std::exchange(other.conn_, nullptr);
        connect_error_ = std::move(other.connect_error_);
        connect_ms_ = other.connect_ms_;
    }
    return *this;
}

namespace {

bool poll_fd(int fd, short events, Clock::time_point deadline) {
    while (true) {
        auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (remaining.count() < 0) return false;
        pollfd p{fd, events, 0};
        int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(remaining.count(), 1000)));
        if (r > 0) return true;
        if (r < 0 && errno != EINTR) return true;  // let the caller see the error
    }
}

std::string trim_message(const char* s) {
    std::string m = s ? s : "";
    while (!m.empty() && (m.back() == '\n' || m.back() == ' '))
        m.pop_back();
    return m;
}

}  // namespace

bool PgConn::connect(const std::string& dsn, std::chrono::milliseconds timeout) {
    close();
    connect_error_.clear();
    auto start = Clock::now();
    auto deadline = start + timeout;
    conn_ = PQconnectStart(dsn.c_str());
    if (conn_ == nullptr) {
        connect_error_ = "PQconnectStart: out of memory";
        return false;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (true) {
        if (PQstatus(conn_) == CONNECTION_BAD) break;
        if (st == PGRES_POLLING_OK) break;
        if (st == PGRES_POLLING_FAILED) break;
        int fd = PQsocket(conn_);
        if (fd < 0) break;
        short events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT;
        if (!poll_fd(fd, events, deadline)) {
            connect_error_ = "connect timed out after " + std::to_string(timeout.count()) + " ms";
            PQfinish(conn_);
            conn_ = nullptr;
            connect_ms_ = elapsed_ms(start);
            return false;
        }
        st = PQconnectPoll(conn_);
    }
    connect_ms_ = elapsed_ms(start);
    if (PQstatus(conn_) != CONNECTION_OK) {
        connect_error_ = trim_message(PQerrorMessage(conn_));
        if (connect_error_.empty()) connect_error_ = "connection failed";
        PQfinish(conn_);
        conn_ = nullptr;
        return false;
    }
    return true;
}

bool PgConn::wait_readable(Clock::time_point deadline) {
    return poll_fd(PQsocket(conn_), POLLIN, deadline);
}

QueryResult PgConn::collect(Clock::time_point start, std::chrono::milliseconds timeout) {
    QueryResult out;
    auto deadline = start + timeout;
    bool have_result = false;
    while (true) {
        bool busy = true;
        while (busy) {
            if (PQconsumeInput(conn_) == 0) {
                busy = false;  // connection trouble: PQgetResult reports it
                break;
            }
            busy = PQisBusy(conn_) != 0;
            if (!busy) break;
            if (!wait_readable(deadline)) {
                out.timed_out = true;
                cancel();
                // Give the cancel a few seconds to produce an answer; otherwise drop the connection.
                auto grace = Clock::now() + 5s;
                while (PQconsumeInput(conn_) != 0 && PQisBusy(conn_) != 0 && wait_readable(grace)) {
                }
                if (PQisBusy(conn_) != 0) {
                    out.error = "no answer within " + std::to_string(timeout.count()) + " ms";
                    out.status = PGRES_FATAL_ERROR;
                    out.connection_lost = true;
                    out.elapsed_ms = elapsed_ms(start);
                    PQfinish(conn_);
                    conn_ = nullptr;
                    return out;
                }
                break;
            }
        }
        PGresult* res = PQgetResult(conn_);
        if (res == nullptr) break;
        ExecStatusType st = PQresultStatus(res);
        bool is_error = st == PGRES_FATAL_ERROR || st == PGRES_BAD_RESPONSE || st == PGRES_NONFATAL_ERROR;
        if (is_error) {
            if (out.error.empty() && out.sqlstate.empty()) {
                const char* code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                const char* msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
                out.sqlstate = code ? code : "";
                out.error = msg ? msg : trim_message(PQresultErrorMessage(res));
                if (out.error.empty()) out.error = trim_message(PQerrorMessage(conn_));
                out.status = st;
                out.rows.clear();
            }
        } else if (out.error.empty()) {
            out.status = st;
            have_result = true;
            out.columns.clear();
            out.rows.clear();
            int nf = PQnfields(res);
            for (int c = 0; c < nf; ++c)
                out.columns.emplace_back(PQfname(res, c) ? PQfname(res, c) : "");
            int nt = PQntuples(res);
            for (int r = 0; r < nt; ++r) {
                std::vector<std::string> row;
                for (int c = 0; c < nf; ++c)
                    row.emplace_back(PQgetvalue(res, r, c), PQgetlength(res, r, c));
                out.rows.push_back(std::move(row));
            }
        }
        PQclear(res);
        if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH) break;
    }
    if (!have_result && out.error.empty() && out.status == PGRES_FATAL_ERROR) {
        out.error = trim_message(PQerrorMessage(conn_));
        if (out.error.empty()) out.error = "no result";
    }
    out.connection_lost = PQstatus(conn_) != CONNECTION_OK;
    out.elapsed_ms = elapsed_ms(start);
    return out;
}

namespace {

QueryResult not_connected(PGconn* conn) {
    QueryResult r;
    r.error = conn ? trim_message(PQerrorMessage(conn)) : "not connected";
    if (r.error.empty()) r.error = "send failed";
    r.connection_lost = true;
    return r;
}

std::vector<const char*> param_pointers(const Params& params) {
    std::vector<const char*> v;
    for (const auto& p : params)
        v.push_back(p ? p->c_str() : nullptr);
    return v;
}

}  // namespace

QueryResult PgConn::exec(const std::string& sql, std::chrono::milliseconds timeout) {
    auto start = Clock::now();
    if (!send(sql)) return not_connected(conn_);
    return collect(start, timeout);
}

QueryResult PgConn::exec_params(const std::string& sql, const Params& params,
                                std::chrono::milliseconds timeout) {
    auto start = Clock::now();
    if (!send_params(sql, params)) return not_connected(conn_);
    return collect(start, timeout);
}

QueryResult PgConn::prepare(const std::string& name, const std::string& sql, int nparams,
                            std::chrono::milliseconds timeout) {
    auto start = Clock::now();
    if (conn_ == nullptr || PQsendPrepare(conn_, name.c_str(), sql.c_str(), nparams, nullptr) == 0) {
        return not_connected(conn_);
    }
    return collect(start, timeout);
}

QueryResult PgConn::exec_prepared(const std::string& name, const Params& params,
                                  std::chrono::milliseconds timeout) {
    auto start = Clock::now();
    auto ptrs = param_pointers(params);
    if (conn_ == nullptr || PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(ptrs.size()),
                                                ptrs.data(), nullptr, nullptr, 0) == 0) {
        return not_connected(conn_);
    }
    return collect(start, timeout);
}

bool PgConn::send(const std::string& sql) {
    return conn_ != nullptr && PQsendQuery(conn_, sql.c_str()) != 0;
}

bool PgConn::send_params(const std::string& sql, const Params& params) {
    if (conn_ == nullptr) return false;
    auto ptrs = param_pointers(params);
    return PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(ptrs.size()), nullptr, ptrs.data(), nullptr,
                             nullptr, 0) != 0;
}

bool PgConn::result_ready() {
    if (conn_ == nullptr) return true;
    if (PQconsumeInput(conn_) == 0) return true;
    return PQisBusy(conn_) == 0;
}

QueryResult PgConn::wait(std::chrono::milliseconds timeout) {
    if (conn_ == nullptr) return not_connected(conn_);
    return collect(Clock::now(), timeout);
}

std::optional<QueryResult> PgConn::next_result(std::chrono::milliseconds timeout) {
    QueryResult out;
    if (conn_ == nullptr) return not_connected(conn_);
    auto start = Clock::now();
    auto deadline = start + timeout;
    while (PQconsumeInput(conn_) != 0 && PQisBusy(conn_) != 0) {
        if (!wait_readable(deadline)) {
            out.timed_out = true;
            out.error = "no result within " + std::to_string(timeout.count()) + " ms";
            out.elapsed_ms = elapsed_ms(start);
            return out;
        }
    }
    PGresult* res = PQgetResult(conn_);
    if (res == nullptr) return std::nullopt;
    out.status = PQresultStatus(res);
    if (out.status == PGRES_FATAL_ERROR || out.status == PGRES_NONFATAL_ERROR ||
        out.status == PGRES_BAD_RESPONSE) {
        const char* code = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char* msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        out.sqlstate = code ? code : "";
        out.error = msg ? msg : trim_message(PQresultErrorMessage(res));
    } else {
        int nf = PQnfields(res);
        for (int c = 0; c < nf; ++c)
            out.columns.emplace_back(PQfname(res, c) ? PQfname(res, c) : "");
        for (int r = 0; r < PQntuples(res); ++r) {
            std::vector<std::string> row;
            for (int c = 0; c < nf; ++c)
                row.emplace_back(PQgetvalue(res, r, c), PQgetlength(res, r, c));
            out.rows.push_back(std::move(row));
        }
    }
    PQclear(res);
    out.connection_lost = PQstatus(conn_) != CONNECTION_OK;
    out.elapsed_ms = elapsed_ms(start);
    return out;
}

bool PgConn::put_copy_data(const std::string& data) {
    return conn_ != nullptr && PQputCopyData(conn_, data.data(), static_cast<int>(data.size())) == 1;
}

bool PgConn::put_copy_end(const char* error_message) {
    return conn_ != nullptr && PQputCopyEnd(conn_, error_message) == 1 && PQflush(conn_) == 0;
}

std::optional<std::string> PgConn::get_copy_row(std::chrono::milliseconds timeout) {
    copy_failed_ = false;
    if (conn_ == nullptr) {
        copy_failed_ = true;
        return std::nullopt;
    }
    auto deadline = Clock::now() + timeout;
    while (true) {
        char* buf = nullptr;
        int n = PQgetCopyData(conn_, &buf, 1);
        if (n > 0) {
            std::string row(buf, static_cast<size_t>(n));
            PQfreemem(buf);
            return row;
        }
        if (n == -1) return std::nullopt;  // COPY done
        if (n == -2) {
            copy_failed_ = true;
            return std::nullopt;
        }
        if (!wait_readable(deadline) || PQconsumeInput(conn_) == 0) {
            copy_failed_ = true;
            return std::nullopt;
        }
    }
}

bool PgConn::cancel(std::string* error) {
    if (conn_ == nullptr) {
        if (error) *error = "not connected";
        return false;
    }
    PGcancel* c = PQgetCancel(conn_);
    if (c == nullptr) {
        if (error) *error = "PQgetCancel returned null";
        return false;
    }
    char errbuf[256] = {0};
    int ok = PQcancel(c, errbuf, sizeof errbuf);
    PQfreeCancel(c);
    if (!ok && error) *error = errbuf;
    return ok != 0;
}

void PgConn::abort_socket() {
    if (conn_ == nullptr) return;
    int fd = PQsocket(conn_);
    if (fd >= 0) {
        // RST instead of FIN, as when a client process is killed with unsent data.
        linger lg{1, 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        ::shutdown(fd, SHUT_RDWR);
    }
    PQfinish(conn_);  // its Terminate cannot reach the peer any more
    conn_ = nullptr;
}

void PgConn::close() {
    if (conn_ != nullptr) {
        PQfinish(conn_);
        conn_ = nullptr;
    }
}

std::string PgConn::parameter(const std::string& name) const {
    if (conn_ == nullptr) return {};
    const char* v = PQparameterStatus(conn_, name.c_str());
    return v ? v : "";
}

std::string quote_conninfo_value(const std::string& value) {
    bool needs = value.empty();
    for (char c : value) {
        if (c == ' ' || c == '\'' || c == '\\' || c == '=' || c == '\t') needs = true;
    }
    if (!needs) return value;
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

std::string conninfo(const std::vector<std::pair<std::string, std::string>>& kv) {
    std::string out;
    for (const auto& [k, v] : kv) {
        if (!out.empty()) out += ' ';
        out += k + "=" + quote_conninfo_value(v);
    }
    return out;
}

std::string sql_literal(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += '\'';
        out += c;
    }
    return out + "'";
}

// ---- raw protocol ---------------------------------------------------------------------------------------

ErrorFields parse_error_fields(const std::string& payload) {
    ErrorFields f;
    size_t i = 0;
    while (i < payload.size() && payload[i] != '\0') {
        char code = payload[i++];
        size_t end = payload.find('\0', i);
        if (end == std::string::npos) end = payload.size();
        std::string value = payload.substr(i, end - i);
        if (code == 'S' && f.severity.empty()) f.severity = value;
        if (code == 'V') f.severity = value;
        if (code == 'C') f.sqlstate = value;
        if (code == 'M') f.message = value;
        i = end + 1;
    }
    return f;
}

bool RawConn::connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout) {
    close();
    eof_ = timed_out_ = false;
    buf_.clear();
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1) {
        close();
        return false;
    }
    int r = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    if (r != 0 && errno != EINPROGRESS) {
        close();
        return false;
    }
    if (r != 0) {
        if (!poll_fd(fd_, POLLOUT, Clock::now() + timeout)) {
            close();
            return false;
        }
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            close();
            return false;
        }
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return true;
}

bool RawConn::send(const std::string& bytes) {
    size_t off = 0;
    auto deadline = Clock::now() + 10s;
    while (off < bytes.size()) {
        ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += static_cast<size_t>(n);
        } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            if (!poll_fd(fd_, POLLOUT, deadline)) return false;
        } else {
            return false;
        }
    }
    return true;
}

bool RawConn::fill(size_t need, Clock::time_point deadline) {
    char tmp[16384];
    while (buf_.size() < need) {
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n > 0) {
            buf_.append(tmp, static_cast<size_t>(n));
        } else if (n == 0) {
            eof_ = true;
            return false;
        } else if (errno == EAGAIN || errno == EINTR) {
            if (!poll_fd(fd_, POLLIN, deadline)) {
                timed_out_ = true;
                return false;
            }
        } else {
            eof_ = true;  // ECONNRESET and friends: the peer is gone
            return false;
        }
    }
    return true;
}

std::optional<BackendMessage> RawConn::read_message(std::chrono::milliseconds timeout) {
    if (fd_ < 0) return std::nullopt;
    timed_out_ = false;
    auto deadline = Clock::now() + timeout;
    if (!fill(1, deadline)) return std::nullopt;
    if (!fill(5, deadline)) return std::nullopt;
    uint32_t len;
    std::memcpy(&len, buf_.data() + 1, 4);
    len = ntohl(len);
    if (len < 4 || len > 64 * 1024 * 1024) {
        eof_ = true;
        return std::nullopt;
    }
    if (!fill(1 + len, deadline)) return std::nullopt;
    BackendMessage m{buf_[0], buf_.substr(5, len - 4)};
    buf_.erase(0, 1 + len);
    return m;
}

bool RawConn::wait_closed(std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    char tmp[16384];
    while (!eof_ && fd_ >= 0) {
        ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            eof_ = true;
        } else if (n < 0 && !poll_fd(fd_, POLLIN, deadline)) {
            timed_out_ = true;
            return false;
        }
    }
    return true;
}

void RawConn::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

std::string RawConn::int32(int32_t v) {
    uint32_t n = htonl(static_cast<uint32_t>(v));
    return std::string(reinterpret_cast<const char*>(&n), 4);
}

std::string RawConn::int16(int16_t v) {
    uint16_t n = htons(static_cast<uint16_t>(v));
    return std::string(reinterpret_cast<const char*>(&n), 2);
}

std::string RawConn::message(char type, const std::string& payload) {
    return std::string(1, type) + int32(static_cast<int32_t>(payload.size() + 4)) + payload;
}

std::string RawConn::startup_packet(const std::vector<std::pair<std::string, std::string>>& params,
                                    int32_t protocol) {
    std::string body = int32(protocol);
    for (const auto& [k, v] : params) {
        body += k;
        body += '\0';
        body += v;
        body += '\0';
    }
    body += '\0';
    return int32(static_cast<int32_t>(body.size() + 4)) + body;
}

namespace {

std::string hex(const unsigned char* p, size_t n) {
    static const char* digits = "0123456789abcdef";
    std::string s;
    for (size_t i = 0; i < n; ++i) {
        s += digits[p[i] >> 4];
        s += digits[p[i] & 15];
    }
    return s;
}

std::string md5_hex(const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), out, &len, EVP_md5(), nullptr);
    return hex(out, len);
}

std::string base64_encode(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<size_t>(std::max(n, 0)));
    return out;
}

std::string base64_decode(const std::string& in) {
    std::string out(3 * in.size() / 4 + 3, '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    if (n < 0) return {};
    size_t len = static_cast<size_t>(n);
    if (!in.empty() && in.back() == '=') --len;
    if (in.size() > 1 && in[in.size() - 2] == '=') --len;
    out.resize(len);
    return out;
}

std::string hmac_sha256(const std::string& key, const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len);
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string sha256(const std::string& data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), out, &len, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<const char*>(out), len);
}

std::string scram_attr(const std::string& msg, char name) {
    std::stringstream ss(msg);
    std::string part;
    while (std::getline(ss, part, ',')) {
        if (part.size() >= 2 && part[0] == name && part[1] == '=') return part.substr(2);
    }
    return {};
}

}  // namespace

std::string LoginOutcome::describe() const {
    std::ostringstream ss;
    ss << "ready=" << ready << " method=" << auth_method
       << " sqlstate=" << (sqlstate.empty() ? "-" : sqlstate) << " message=\"" << message
       << "\" closed=" << closed << " timed_out=" << timed_out << " elapsed_ms=" << elapsed_ms;
    return ss.str();
}

LoginOutcome raw_login(RawConn& conn, const std::string& user, const std::string& database,
                       const std::string& password, std::chrono::milliseconds timeout,
                       const std::vector<std::pair<std::string, std::string>>& extra_params) {
    LoginOutcome out;
    auto start = Clock::now();
    auto deadline = start + timeout;
    auto remaining = [&] {
        return std::max(1ms, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    };
    std::vector<std::pair<std::string, std::string>> params{{"user", user}, {"database", database}};
    for (const auto& p : extra_params)
        params.push_back(p);
    if (!conn.send(RawConn::startup_packet(params))) {
        out.closed = true;
        return out;
    }
    std::string client_first_bare, server_first, nonce, salted;
    while (true) {
        auto m = conn.read_message(remaining());
        if (!m) {
            out.closed = conn.eof();
            out.timed_out = conn.timed_out();
            break;
        }
        if (m->type == 'E') {
            ErrorFields f = parse_error_fields(m->payload);
            out.sqlstate = f.sqlstate;
            out.message = f.message;
            break;
        }
        if (m->type == 'Z') {
            out.ready = true;
            break;
        }
        if (m->type == 'K' && m->payload.size() >= 8) {
            uint32_t v[2];
            std::memcpy(v, m->payload.data(), 8);
            out.backend_pid = ntohl(v[0]);
            out.backend_key = ntohl(v[1]);
            continue;
        }
        if (m->type != 'R' || m->payload.size() < 4) continue;  // ParameterStatus, notices
        uint32_t code;
        std::memcpy(&code, m->payload.data(), 4);
        code = ntohl(code);
        if (code == 0) {
            if (out.auth_method.empty()) out.auth_method = "trust";
        } else if (code == 3) {
            out.auth_method = "cleartext";
            conn.send(RawConn::message('p', password + std::string(1, '\0')));
        } else if (code == 5 && m->payload.size() >= 8) {
            out.auth_method = "md5";
            std::string salt = m->payload.substr(4, 4);
            std::string digest = "md5" + md5_hex(md5_hex(password + user) + salt);
            conn.send(RawConn::message('p', digest + std::string(1, '\0')));
        } else if (code == 10) {
            out.auth_method = "scram-sha-256";
            unsigned char raw_nonce[18];
            RAND_bytes(raw_nonce, sizeof raw_nonce);
            nonce = base64_encode(std::string(reinterpret_cast<char*>(raw_nonce), sizeof raw_nonce));
            client_first_bare = "n=,r=" + nonce;
            std::string first = "n,," + client_first_bare;
            std::string payload = std::string("SCRAM-SHA-256") + '\0' +
                                  RawConn::int32(static_cast<int32_t>(first.size())) + first;
            conn.send(RawConn::message('p', payload));
        } else if (code == 11) {
            server_first = m->payload.substr(4);
            std::string server_nonce = scram_attr(server_first, 'r');
            std::string salt = base64_decode(scram_attr(server_first, 's'));
            int iterations = std::atoi(scram_attr(server_first, 'i').c_str());
            unsigned char key[32];
            PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                              reinterpret_cast<const unsigned char*>(salt.data()),
                              static_cast<int>(salt.size()), iterations, EVP_sha256(), sizeof key, key);
            salted.assign(reinterpret_cast<char*>(key), sizeof key);
            std::string client_key = hmac_sha256(salted, "Client Key");
            std::string stored_key = sha256(client_key);
            std::string without_proof = "c=biws,r=" + server_nonce;
            std::string auth_message = client_first_bare + "," + server_first + "," + without_proof;
            std::string signature = hmac_sha256(stored_key, auth_message);
            std::string proof = client_key;
            for (size_t i = 0; i < proof.size(); ++i)
                proof[i] = static_cast<char>(proof[i] ^ signature[i]);
            conn.send(RawConn::message('p', without_proof + ",p=" + base64_encode(proof)));
        } else if (code == 12) {
            // SASL final: server signature (not verified: the tests only need the outcome).
        } else {
            out.auth_method = "other";
        }
    }
    out.elapsed_ms = elapsed_ms(start);
    return out;
}

LoginOutcome raw_login(const std::string& host, int port, const std::string& user,
                       const std::string& database, const std::string& password,
                       std::chrono::milliseconds timeout) {
    RawConn conn;
    if (!conn.connect_tcp(host, port, timeout)) {
        LoginOutcome out;
        out.closed = true;
        out.message = "connect failed";
        return out;
    }
    return raw_login(conn, user, database, password, timeout);
}

RawQueryOutcome raw_query(RawConn& conn, const std::string& sql, std::chrono::milliseconds timeout) {
    RawQueryOutcome out;
    if (!conn.send(RawConn::message('Q', sql + std::string(1, '\0')))) {
        out.closed = true;
        return out;
    }
    auto deadline = Clock::now() + timeout;
    while (true) {
        auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        auto m = conn.read_message(std::max(1ms, remaining));
        if (!m) {
            out.closed = conn.eof();
            break;
        }
        if (m->type == 'E' && out.error.sqlstate.empty()) out.error = parse_error_fields(m->payload);
        if (m->type == 'Z') {
            out.ready = true;
            out.transaction_status = m->payload.empty() ? 0 : m->payload[0];
            break;
        }
    }
    return out;
}

// ---- pgbench --------------------------------------------------------------------------------------------

std::string pgbench_path() {
    for (const char* p : {"/usr/lib/postgresql/15/bin/pgbench", "/usr/bin/pgbench"}) {
        if (access(p, X_OK) == 0) return p;
    }
    return "pgbench";
}

namespace {

// The number right after `label` in `text`, or nullopt.
std::optional<std::string> number_after(const std::string& text, const std::string& label) {
    size_t at = text.find(label);
    if (at == std::string::npos) return std::nullopt;
    size_t begin = at + label.size();
    size_t end = begin;
    while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
        ++end;
    if (end == begin) return std::nullopt;
    return text.substr(begin, end - begin);
}

}  // namespace

PgbenchResult parse_pgbench_output(const std::string& output) {
    PgbenchResult r;
    r.output = output;
    if (auto v = number_after(output, "tps = ")) r.tps = std::stod(*v);
    if (auto v = number_after(output, "number of transactions actually processed: "))
        r.processed = std::stoll(*v);
    if (auto v = number_after(output, "number of failed transactions: ")) r.failed = std::stoll(*v);
    // "client 17 aborted in command 1 (SQL) of script 0; ..."
    for (size_t at = output.find("client "); at != std::string::npos; at = output.find("client ", at + 1)) {
        size_t i = at + 7;
        size_t digits = i;
        while (digits < output.size() && std::isdigit(static_cast<unsigned char>(output[digits])))
            ++digits;
        if (digits > i && output.compare(digits, 8, " aborted") == 0) ++r.aborted_clients;
    }
    return r;
}

std::string PgbenchResult::describe() const {
    std::ostringstream ss;
    ss << "pgbench exit=" << exit_code << (timed_out ? " TIMED_OUT" : "") << " tps=" << tps
       << " processed=" << processed << " failed=" << failed << " aborted_clients=" << aborted_clients
       << "\n";
    ss << (output.size() > 6000 ? "...\n" + output.substr(output.size() - 6000) : output);
    return ss.str();
}

PgbenchResult run_pgbench(const std::vector<std::string>& args, std::chrono::milliseconds timeout) {
    SpawnOptions opts;
    opts.argv.push_back(pgbench_path());
    for (const auto& a : args)
        opts.argv.push_back(a);
    opts.extra_env = {"PGCONNECT_TIMEOUT=10", "PGSSLMODE=disable", "PGGSSENCMODE=disable"};
    RunResult rr = run_command(opts, timeout);
    PgbenchResult r = parse_pgbench_output(rr.output);
    r.exit_code = rr.exit_code;
    r.timed_out = rr.timed_out;
    return r;
}

}  // namespace itest
