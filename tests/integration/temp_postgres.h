// Owns TempPostgres: a throwaway PostgreSQL 15 server (Debian's binaries) in a temp dir on a free port.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "pg_client.h"
#include "subprocess.h"

namespace itest {

struct TempPostgresOptions {
    int max_connections = 100;
    int superuser_reserved_connections = 3;
    std::string hba_method = "trust";  // pg_hba method for TCP: trust | md5 | scram-sha-256
    std::string password_encryption = "scram-sha-256";
    std::vector<std::string> settings;  // extra "name=value", passed as `-c name=value`
    // pg_hba.conf lines for TCP (e.g. hostssl-only rules), replacing the `host ... hba_method` ones;
    // `local all all trust` stays first.
    std::vector<std::string> hba_tcp_lines;
};

enum class PasswordKind { kMd5, kScram };

// How TempPostgres::stop_server ends the server (the fault tests, issue 15): kFast = `pg_ctl -m fast`
// (SIGINT: backends are terminated with 57P01, a shutdown checkpoint), kImmediate = `pg_ctl -m immediate`
// (SIGQUIT: no checkpoint, crash recovery at the next start), kKill = SIGKILL of the postmaster and of all
// its children at once, like a host or container that died (crash recovery at the next start).
enum class StopMode { kFast, kImmediate, kKill };

// Starts in the constructor (check ok()/error()), stops (immediate shutdown) and deletes its dir in the
// destructor. Construct it on the main thread (e.g. in SetUpTestSuite): the server gets SIGQUIT when the
// constructing thread dies. As root, the server runs as the `postgres` OS user and its dir is chowned to it.
class TempPostgres {
  public:
    explicit TempPostgres(TempPostgresOptions options = {});
    ~TempPostgres();
    TempPostgres(const TempPostgres&) = delete;
    TempPostgres& operator=(const TempPostgres&) = delete;

    bool ok() const { return pid_ > 0 && error_.empty(); }
    const std::string& error() const { return error_; }

    int port() const { return port_; }
    std::string host() const { return "127.0.0.1"; }
    const std::string& dir() const { return dir_; }  // also the Unix socket directory
    std::string data_dir() const { return dir_ + "/data"; }
    std::string log_path() const { return dir_ + "/postgres.log"; }
    std::string log_tail(size_t bytes = 6000) const { return tail_file(log_path(), bytes); }
    pid_t pid() const { return pid_; }

    // ---- faults (issue 15; call from the thread that constructed this object) ----
    // Stops the server as `mode` says and waits until every server process is gone; false on timeout.
    bool stop_server(StopMode mode, std::chrono::milliseconds timeout = 30s);
    // Starts the stopped server again on the same port and data dir; returns once it accepts logins (the
    // moment is up_since()). False (see error()) if it did not within 30 s.
    bool start_server();
    // stop_server + start_server.
    bool restart(StopMode mode);
    // When the last start_server (or the constructor, or wait_recovered) saw the server accept logins.
    Clock::time_point up_since() const { return up_since_; }
    // Sends `sig` to one server process (a backend: SIGKILL makes the postmaster end every backend and run
    // crash recovery; SIGTERM is what pg_terminate_backend sends). False if kill(2) failed.
    bool signal_backend(pid_t backend, int sig);
    // After a backend crash: waits until the postmaster logged the crash ("terminating any other active
    // server processes"/"reinitializing"; log from byte `log_offset` on) and then accepts logins again; sets
    // up_since(). The admin session is reopened.
    bool wait_recovered(size_t log_offset, std::chrono::milliseconds timeout = 30s);
    // Size of the server log now (pass to wait_recovered).
    size_t log_size() const;
    // The postmaster's direct children (backends and auxiliary processes), from /proc.
    std::vector<pid_t> server_processes() const;

    // TCP connection string for libpq (sslmode/gssencmode disabled, connect_timeout=5).
    std::string dsn(const std::string& user, const std::string& password = "",
                    const std::string& db = "postgres") const;
    // Superuser `postgres` over the Unix socket in dir().
    std::string admin_dsn(const std::string& db = "postgres") const;
    // A `[databases]` entry value for a pooler: "host=127.0.0.1 port=N dbname=postgres" + extra.
    std::string pooler_target(const std::string& extra = "", const std::string& db = "postgres") const;

    // As superuser over the Unix socket (one shared session, serialized by a mutex).
    QueryResult exec(const std::string& sql, std::chrono::milliseconds timeout = 30s);
    // First value of the first row, or "<error: ...>" so that comparisons fail visibly.
    std::string query_scalar(const std::string& sql);
    // query_scalar as an integer, -1 on error.
    long long query_int(const std::string& sql);

    // CREATE ROLE (if missing) LOGIN with a password stored as md5 or SCRAM; grants ALL on schema public.
    bool create_role(const std::string& name, const std::string& password,
                     PasswordKind kind = PasswordKind::kScram, bool superuser = false);
    // `pgbench -i -s scale` over the Unix socket as postgres; grants the tables to PUBLIC.
    RunResult pgbench_init(int scale);

    // Client backends whose pg_stat_activity row matches `where` (e.g. "usename = 'app'").
    long long count_backends(const std::string& where);
    // Polls `sql` (a boolean scalar) until it yields 't'; false on timeout.
    bool wait_until(const std::string& sql, std::chrono::milliseconds timeout);
    // Waits until no client backend matches `where`.
    bool wait_no_backends(const std::string& where, std::chrono::milliseconds timeout = 10s);

  private:
    bool start();
    bool prepare_data_dir();
    bool launch(int port, bool* retry_with_other_port);
    void stop();
    bool ensure_admin();

    TempPostgresOptions options_;
    std::string dir_;
    std::string error_;
    int port_ = 0;
    pid_t pid_ = -1;
    Clock::time_point up_since_{};
    std::mutex admin_mutex_;
    PgConn admin_;
};

}  // namespace itest
