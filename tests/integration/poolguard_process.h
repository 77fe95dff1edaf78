// Owns PoolguardProcess: writes ini + userlist, runs `poolguard serve` (or pgbouncer) and controls it.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "subprocess.h"

namespace itest {

// kPgbouncer: the reference, PgBouncer 1.25.2 (see pgbouncer_binary()); kPgbouncer118: Debian's 1.18
// (/usr/sbin/pgbouncer), only for tests about that release.
enum class PoolerKind { kPoolguard, kPgbouncer, kPgbouncer118 };

// The content of the ini file and of its auth_file.
struct PoolerConfig {
    std::vector<std::string> databases;                         // "[databases]" lines: "name = host=..."
    std::vector<std::string> users;                             // "[users]" lines: "name = pool_mode=..."
    std::vector<std::pair<std::string, std::string>> settings;  // "[pgbouncer]" key = value, in order
    std::vector<std::pair<std::string, std::string>> userlist;  // auth_file: "user" "password"
    std::vector<std::string> raw_pgbouncer_lines;               // appended verbatim to [pgbouncer]
    std::vector<std::string> peers;                             // "[peers]" lines: "1 = host=... port=..."

    // Sets (or replaces) a [pgbouncer] parameter.
    PoolerConfig& set(const std::string& key, const std::string& value);
    PoolerConfig& set(const std::string& key, long long value) { return set(key, std::to_string(value)); }
    PoolerConfig& set(const std::string& key, const char* value) { return set(key, std::string(value)); }
    PoolerConfig& database(const std::string& name, const std::string& value);
    PoolerConfig& user(const std::string& name, const std::string& value);
    PoolerConfig& auth(const std::string& user, const std::string& password);
    std::optional<std::string> get(const std::string& key) const;
};

// Runs one pooler. Construct, then ASSERT_TRUE(p.start()). Defaults added to [pgbouncer] unless set:
// listen_addr=127.0.0.1, listen_port=<free port>, unix_socket_dir=<temp dir>, auth_type=trust,
// auth_file=<temp dir>/userlist.txt. Start it from the main thread (PDEATHSIG ties it to that thread).
class PoolguardProcess {
  public:
    explicit PoolguardProcess(PoolerConfig config, PoolerKind kind = default_kind());
    ~PoolguardProcess();
    PoolguardProcess(const PoolguardProcess&) = delete;
    PoolguardProcess& operator=(const PoolguardProcess&) = delete;

    // POOLGUARD_IT_TARGET=pgbouncer runs every test against PgBouncer 1.25.2 instead (to check the tests);
    // POOLGUARD_IT_TARGET=pgbouncer-1.18 against Debian's /usr/sbin/pgbouncer.
    static PoolerKind default_kind();
    static bool testing_pgbouncer() { return default_kind() != PoolerKind::kPoolguard; }
    static std::string binary();  // POOLGUARD_BINARY
    // PgBouncer 1.25.2: $POOLGUARD_PGBOUNCER, else what ../shared/anchors/build-pgbouncer (beside the source
    // tree) prints (it builds it once, cached). Empty when neither works; tests that compare with it skip
    // then.
    static std::string pgbouncer_binary();
    // Why pgbouncer_binary() is empty, for GTEST_SKIP messages.
    static std::string pgbouncer_unavailable_reason();

    // Writes the files, spawns, waits until the TCP port listens. On failure the message holds the log.
    ::testing::AssertionResult start(std::chrono::milliseconds timeout = 10s);
    // Writes the files and runs the pooler expecting it to exit by itself (invalid configs); returns the
    // decoded exit status, nullopt if still running after `timeout` (it is then killed).
    std::optional<int> run_until_exit(std::chrono::milliseconds timeout = 10s);

    int port() const { return port_; }
    std::string host() const { return "127.0.0.1"; }
    const std::string& dir() const { return dir_; }
    std::string config_path() const { return dir_ + "/pooler.ini"; }
    std::string userlist_path() const { return dir_ + "/userlist.txt"; }
    std::string output_path() const { return dir_ + "/pooler.out"; }
    pid_t pid() const { return pid_; }
    PoolerKind kind() const { return kind_; }
    const PoolerConfig& config() const { return config_; }

    // TCP libpq connection string; `extra` is appended verbatim ("application_name=x ...").
    std::string dsn(const std::string& user, const std::string& password = "", const std::string& db = "db",
                    const std::string& extra = "") const;
    // Same over the Unix socket in unix_socket_dir (host=<dir>).
    std::string unix_dsn(const std::string& user, const std::string& password = "",
                         const std::string& db = "db", const std::string& extra = "") const;

    // Command-line flags put before the config file (`serve FLAGS FILE`, `pgbouncer FLAGS FILE`).
    void set_flags(std::vector<std::string> flags) { flags_ = std::move(flags); }
    // A program the pooler's command line is given to (systemd-socket-activate -l ADDR ...), which execs it.
    void set_launcher(std::vector<std::string> launcher) { launcher_ = std::move(launcher); }
    // "NAME=value" added to the pooler's environment (NOTIFY_SOCKET=...).
    void add_env(std::string assignment) { extra_env_.push_back(std::move(assignment)); }
    // stdout+stderr of the process only (without the logfile).
    std::string output_contents() const;

    bool send_signal(int sig);
    // Replaces the config files (same dir, same port defaults); follow with send_signal(SIGHUP).
    bool rewrite_config(PoolerConfig config);
    // Decoded exit status (exit code, or 128+signal); nullopt if still running after `timeout`.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout);
    bool running();
    // stdout+stderr of the process, plus `logfile` if one is configured.
    std::string log_contents() const;
    // Waits until the log contains `needle`.
    bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout);
    // 1-based line of `key = ...` in the written ini ([pgbouncer] section), 0 if absent.
    int line_of(const std::string& key) const;

  private:
    std::string render_ini() const;
    std::string render_userlist() const;
    bool write_files(std::string* error);
    pid_t launch(std::string* error);
    void check_sanitizer_reports();

    PoolerConfig config_;
    PoolerKind kind_;
    std::vector<std::string> flags_;
    std::vector<std::string> launcher_;
    std::vector<std::string> extra_env_;
    std::string dir_;
    int port_ = 0;
    bool port_fixed_ = false;
    pid_t pid_ = -1;
    std::optional<int> exit_status_;
    bool sanitizer_checked_ = false;
};

}  // namespace itest
