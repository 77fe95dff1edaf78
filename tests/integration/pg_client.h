// Owns the test client side: RAII libpq wrapper with deadlines, raw wire-protocol client, pgbench runner.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "subprocess.h"

namespace itest {

// One statement's (or one simple-query string's) outcome.
struct QueryResult {
    ExecStatusType status = PGRES_FATAL_ERROR;
    std::string sqlstate;  // PG_DIAG_SQLSTATE of the first error, empty when none was sent
    std::string error;     // the error's primary message, or libpq's text for client-side failures
    std::vector<std::string> columns;
    std::vector<std::vector<std::string>> rows;  // text values; NULL is ""
    bool timed_out = false;                      // no answer before the deadline (a cancel was sent)
    bool connection_lost = false;                // the connection was bad afterwards
    long long elapsed_ms = 0;

    // COMMAND_OK / TUPLES_OK / COPY_IN / COPY_OUT / SINGLE_TUPLE / PIPELINE_SYNC.
    bool ok() const;
    // The text at (row, col), "" when there is none.
    const std::string& value(size_t row = 0, size_t col = 0) const;
    // One line for assertion messages.
    std::string describe() const;
};

using Params = std::vector<std::optional<std::string>>;

// A libpq connection whose every wait is bounded.
class PgConn {
  public:
    PgConn() = default;
    explicit PgConn(const std::string& dsn, std::chrono::milliseconds timeout = 10s) {
        connect(dsn, timeout);
    }
    PgConn(PgConn&& other) noexcept;
    PgConn& operator=(PgConn&& other) noexcept;
    PgConn(const PgConn&) = delete;
    PgConn& operator=(const PgConn&) = delete;
    ~PgConn() { close(); }

    // Non-blocking connect (PQconnectStart/PQconnectPoll) bounded by `timeout`.
    bool connect(const std::string& dsn, std::chrono::milliseconds timeout = 10s);
    bool ok() const { return conn_ != nullptr && PQstatus(conn_) == CONNECTION_OK; }
    const std::string& connect_error() const { return connect_error_; }
    long long connect_ms() const { return connect_ms_; }
    PGconn* get() const { return conn_; }

    // Simple-query protocol; multi-statement strings return the last result (or the first error).
    QueryResult exec(const std::string& sql, std::chrono::milliseconds timeout = 30s);
    // Extended protocol with an unnamed statement (PQexecParams), text parameters.
    QueryResult exec_params(const std::string& sql, const Params& params,
                            std::chrono::milliseconds timeout = 30s);
    // PQprepare / PQexecPrepared (name "" = unnamed statement).
    QueryResult prepare(const std::string& name, const std::string& sql, int nparams,
                        std::chrono::milliseconds timeout = 30s);
    QueryResult exec_prepared(const std::string& name, const Params& params,
                              std::chrono::milliseconds timeout = 30s);

    // Asynchronous: send now, collect later with wait().
    bool send(const std::string& sql);
    bool send_params(const std::string& sql, const Params& params);
    // Reads what has arrived; true when a result can be fetched without blocking.
    bool result_ready();
    // Collects the results of what was sent (sends a cancel and gives up after `timeout`).
    QueryResult wait(std::chrono::milliseconds timeout = 30s);

    // One PQgetResult, waiting at most `timeout` (for pipeline mode): nullopt when libpq returns NULL (end of
    // one query's results); on timeout, a result with timed_out set.
    std::optional<QueryResult> next_result(std::chrono::milliseconds timeout = 30s);

    // COPY FROM STDIN: after exec("COPY ... FROM STDIN") returned PGRES_COPY_IN.
    bool put_copy_data(const std::string& data);
    // Ends COPY IN (error_message = client-side failure, aborting it); then wait() for the command's result.
    bool put_copy_end(const char* error_message = nullptr);
    // COPY TO STDOUT: next row; nullopt at the end of the data (then wait() for the result) or on
    // error/timeout (copy_failed() true).
    std::optional<std::string> get_copy_row(std::chrono::milliseconds timeout = 30s);
    bool copy_failed() const { return copy_failed_; }

    // CancelRequest for this connection's running query (PQgetCancel/PQcancel).
    bool cancel(std::string* error = nullptr);
    // Kills the transport without a Terminate message, like a crashed client.
    void abort_socket();
    // PQfinish (sends Terminate).
    void close();
    // ParameterStatus value the server (pooler) reported, "" if none.
    std::string parameter(const std::string& name) const;
    std::string error_message() const { return conn_ ? PQerrorMessage(conn_) : connect_error_; }

  private:
    QueryResult collect(Clock::time_point start, std::chrono::milliseconds timeout);
    bool wait_readable(Clock::time_point deadline);

    PGconn* conn_ = nullptr;
    bool copy_failed_ = false;
    std::string connect_error_;
    long long connect_ms_ = 0;
};

// Builds a libpq keyword/value string, quoting values as needed.
std::string conninfo(const std::vector<std::pair<std::string, std::string>>& kv);
std::string quote_conninfo_value(const std::string& value);
// SQL literal quoting ('it''s').
std::string sql_literal(const std::string& s);

// ---- raw wire protocol ----------------------------------------------------------------------------------

struct BackendMessage {
    char type = 0;
    std::string payload;  // without type byte and length
};

struct ErrorFields {
    std::string severity;
    std::string sqlstate;
    std::string message;
};
ErrorFields parse_error_fields(const std::string& payload);

// A plain TCP connection speaking bytes, for what libpq cannot (or will not) send.
class RawConn {
  public:
    RawConn() = default;
    RawConn(const RawConn&) = delete;
    RawConn& operator=(const RawConn&) = delete;
    ~RawConn() { close(); }

    bool connect_tcp(const std::string& host, int port, std::chrono::milliseconds timeout = 5s);
    bool send(const std::string& bytes);
    // Next backend message; nullopt on EOF (eof() true), timeout (timed_out() true) or error.
    std::optional<BackendMessage> read_message(std::chrono::milliseconds timeout);
    // Reads (and drops) until the peer closes; false on timeout.
    bool wait_closed(std::chrono::milliseconds timeout);
    bool eof() const { return eof_; }
    bool timed_out() const { return timed_out_; }
    void close();
    int fd() const { return fd_; }

    static std::string int32(int32_t v);
    static std::string int16(int16_t v);
    static std::string message(char type, const std::string& payload);
    static std::string startup_packet(const std::vector<std::pair<std::string, std::string>>& params,
                                      int32_t protocol = 196608);

  private:
    bool fill(size_t need, Clock::time_point deadline);

    int fd_ = -1;
    std::string buf_;
    bool eof_ = false;
    bool timed_out_ = false;
};

struct LoginOutcome {
    bool ready = false;       // AuthenticationOk ... ReadyForQuery
    std::string auth_method;  // "trust", "cleartext", "md5", "scram-sha-256" or "other"
    std::string sqlstate;     // of the ErrorResponse that ended the login
    std::string message;
    bool closed = false;  // the peer closed without (more) ErrorResponse
    bool timed_out = false;
    long long elapsed_ms = 0;
    uint32_t backend_pid = 0;  // BackendKeyData: the cancel key the server (or pooler) gave
    uint32_t backend_key = 0;
    std::string describe() const;
};

// Logs in on an already connected RawConn (startup, cleartext/md5/SCRAM-SHA-256, up to ReadyForQuery).
LoginOutcome raw_login(RawConn& conn, const std::string& user, const std::string& database,
                       const std::string& password, std::chrono::milliseconds timeout = 10s,
                       const std::vector<std::pair<std::string, std::string>>& extra_params = {});
// Connects to host:port, then raw_login.
LoginOutcome raw_login(const std::string& host, int port, const std::string& user,
                       const std::string& database, const std::string& password,
                       std::chrono::milliseconds timeout = 10s);

// Simple query on a raw connection, reading up to ReadyForQuery; returns the error (sqlstate empty if none).
struct RawQueryOutcome {
    bool ready = false;  // ReadyForQuery seen
    char transaction_status = 0;
    ErrorFields error;
    bool closed = false;
};
RawQueryOutcome raw_query(RawConn& conn, const std::string& sql, std::chrono::milliseconds timeout = 10s);

// ---- pgbench ------------------------------------------------------------------------------------------

struct PgbenchResult {
    int exit_code = -1;
    bool timed_out = false;
    double tps = -1;
    long long processed = -1;
    long long failed = -1;    // "number of failed transactions"; -1 when absent from the output
    int aborted_clients = 0;  // "client N aborted ..." lines
    std::string output;
    std::string describe() const;  // summary plus the output's tail
};

std::string pgbench_path();
// Runs pgbench with `args` (e.g. {"-h", ..., "-S", "-T", "30"}) and parses its report.
PgbenchResult run_pgbench(const std::vector<std::string>& args, std::chrono::milliseconds timeout);
PgbenchResult parse_pgbench_output(const std::string& output);

}  // namespace itest
