// Owns TempPostgres: a throwaway PostgreSQL 15 server (Debian's binaries) in a temp dir on a free port.
#include "temp_postgres.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

namespace itest {

namespace {

const std::string kPgBin = "/usr/lib/postgresql/15/bin";

// initdb output is the same for every server, so one copy per machine/binary build is kept under $TMPDIR and
// copied (cp -a) into each new server's dir: much faster than running initdb for every test process.
std::string template_cache_dir() {
    struct stat st {};
    if (stat((kPgBin + "/postgres").c_str(), &st) != 0) return {};
    return env_or("TMPDIR", "/tmp") + "/pgit-template-" + std::to_string(geteuid()) + "-" +
           std::to_string(static_cast<long long>(st.st_size)) + "-" +
           std::to_string(static_cast<long long>(st.st_mtime));
}

RunResult run_initdb(const std::string& data_dir) {
    SpawnOptions o;
    o.argv = {
        kPgBin + "/initdb", "-D",        data_dir,           "-U", "postgres", "-A", "trust", "-E", "UTF8",
        "--locale=C",       "--no-sync", "--no-instructions"};
    o.as_postgres_when_root = true;
    o.extra_env = {"LC_ALL=C", "LANG=C"};
    return run_command(o, 120s);
}

bool copy_tree(const std::string& from, const std::string& to, std::string* error) {
    SpawnOptions o;
    o.argv = {"/bin/cp", "-a", from, to};
    RunResult r = run_command(o, 60s);
    if (r.exit_code != 0 && error) *error = "cp -a failed: " + r.output;
    return r.exit_code == 0;
}

// Returns the cached template's data dir, creating it if needed; empty if caching is off or fails.
std::string ensure_template() {
    if (env_or("POOLGUARD_IT_NO_PG_TEMPLATE", "") == "1") return {};
    std::string cache = template_cache_dir();
    if (cache.empty()) return {};
    if (access((cache + "/complete").c_str(), F_OK) == 0) return cache + "/data";
    std::string build = make_temp_dir("pgit-template-build");
    if (build.empty()) return {};
    if (running_as_root()) {
        if (auto pg = postgres_os_user()) chown_tree(build, *pg);
    }
    RunResult r = run_initdb(build + "/data");
    if (r.exit_code != 0) {
        std::fprintf(stderr, "TempPostgres: initdb for the template failed:\n%s\n", r.output.c_str());
        remove_tree(build);
        return {};
    }
    write_file(build + "/complete", "ok\n");
    // Atomic publish; if another test process won the race, use theirs.
    if (rename(build.c_str(), cache.c_str()) != 0) remove_tree(build);
    if (access((cache + "/complete").c_str(), F_OK) == 0) return cache + "/data";
    return {};
}

}  // namespace

TempPostgres::TempPostgres(TempPostgresOptions options) : options_(std::move(options)) {
    if (!start() && error_.empty()) error_ = "TempPostgres failed to start";
}

TempPostgres::~TempPostgres() {
    stop();
    if (!dir_.empty() && env_or("POOLGUARD_IT_KEEP", "") != "1") remove_tree(dir_);
}

bool TempPostgres::prepare_data_dir() {
    std::string data = data_dir();
    std::string tmpl = ensure_template();
    std::string copy_error;
    bool ready = false;
    if (!tmpl.empty()) {
        ready = copy_tree(tmpl, data, &copy_error);
        if (!ready) remove_tree(data);
    }
    if (!ready) {
        RunResult r = run_initdb(data);
        if (r.exit_code != 0) {
            error_ = "initdb failed (exit " + std::to_string(r.exit_code) + "):\n" + r.output + copy_error;
            return false;
        }
    }
    const std::string& m = options_.hba_method;
    std::string hba =
        "# TempPostgres\n"
        "local all all trust\n"
        "host all postgres 127.0.0.1/32 trust\n"
        "host all all 127.0.0.1/32 " +
        m +
        "\n"
        "host all all ::1/128 " +
        m + "\n";
    if (!options_.hba_tcp_lines.empty()) {
        hba = "# TempPostgres\nlocal all all trust\n";
        for (const auto& line : options_.hba_tcp_lines)
            hba += line + "\n";
    }
    std::string hba_path = data + "/pg_hba.conf";
    if (!write_file(hba_path, hba)) {
        error_ = "cannot write " + hba_path;
        return false;
    }
    chmod(hba_path.c_str(), 0600);
    if (running_as_root()) {
        if (auto pg = postgres_os_user()) chown_tree(data, *pg);
    }
    return true;
}

bool TempPostgres::start() {
    std::optional<OsUser> pg_user;
    if (running_as_root()) {
        pg_user = postgres_os_user();
        if (!pg_user) {
            error_ = "running as root but OS user 'postgres' does not exist (run scripts/deps)";
            return false;
        }
    }
    if (access((kPgBin + "/postgres").c_str(), X_OK) != 0) {
        error_ = kPgBin + "/postgres not found (install postgresql-15 via scripts/deps)";
        return false;
    }
    dir_ = make_temp_dir("pgit");
    if (dir_.empty()) {
        error_ = std::string("mkdtemp failed: ") + strerror(errno);
        return false;
    }
    if (pg_user) chown_tree(dir_, *pg_user);
    if (!prepare_data_dir()) return false;
    for (int attempt = 0; attempt < 5; ++attempt) {
        bool retry = false;
        if (launch(free_tcp_port(), &retry)) return true;
        if (!retry) return false;
    }
    if (error_.empty()) error_ = "could not find a free port for PostgreSQL";
    return false;
}

bool TempPostgres::launch(int port, bool* retry_with_other_port) {
    *retry_with_other_port = false;
    port_ = port;
    SpawnOptions o;
    o.argv = {kPgBin + "/postgres", "-D", data_dir()};
    std::vector<std::string> settings = {
        "port=" + std::to_string(port),
        "listen_addresses=127.0.0.1",
        "unix_socket_directories=" + dir_,
        "max_connections=" + std::to_string(options_.max_connections),
        "superuser_reserved_connections=" + std::to_string(options_.superuser_reserved_connections),
        "password_encryption=" + options_.password_encryption,
        "fsync=off",
        "synchronous_commit=off",
        "full_page_writes=off",
        "shared_buffers=32MB",
        "max_wal_size=256MB",
        "checkpoint_timeout=1h",
        "autovacuum=off",
        "jit=off",
        "max_worker_processes=4",
        "max_parallel_workers_per_gather=0",
        "log_min_messages=warning",
        "log_line_prefix=%m [%p] %u@%d ",
        "lc_messages=C",
    };
    for (const auto& s : options_.settings)
        settings.push_back(s);
    for (const auto& s : settings) {
        o.argv.push_back("-c");
        o.argv.push_back(s);
    }
    o.output_path = log_path();
    o.as_postgres_when_root = true;
    o.death_signal = SIGQUIT;  // immediate shutdown if the test process dies
    o.extra_env = {"LC_ALL=C", "LANG=C"};
    std::string err;
    pid_ = spawn(o, &err);
    if (pid_ < 0) {
        error_ = "cannot start postgres: " + err;
        return false;
    }
    auto start = Clock::now();
    std::string ping_dsn = admin_dsn() + " connect_timeout=2";
    while (elapsed_ms(start) < 30000) {
        if (auto st = wait_pid(pid_, 0ms)) {
            pid_ = -1;
            std::string log = read_file(log_path());
            if (log.find("could not bind") != std::string::npos ||
                log.find("already in use") != std::string::npos) {
                *retry_with_other_port = true;
                return false;
            }
            error_ = "postgres exited with status " + std::to_string(*st) + " during startup:\n" + log_tail();
            return false;
        }
        if (PQping(ping_dsn.c_str()) == PQPING_OK) {
            up_since_ = Clock::now();
            error_.clear();
            return ensure_admin();
        }
        std::this_thread::sleep_for(20ms);
    }
    error_ = "postgres did not accept connections within 30 s:\n" + log_tail();
    stop();
    return false;
}

void TempPostgres::stop() {
    {
        std::lock_guard lock(admin_mutex_);
        admin_.close();
    }
    if (pid_ > 0) {
        kill(pid_, SIGQUIT);  // what `pg_ctl -m immediate stop` sends
        if (!wait_pid(pid_, 15s)) {
            kill(pid_, SIGKILL);
            wait_pid(pid_, 10s);
        }
        pid_ = -1;
    }
}

std::vector<pid_t> TempPostgres::server_processes() const {
    std::vector<pid_t> out;
    if (pid_ <= 0) return out;
    DIR* d = opendir("/proc");
    if (!d) return out;
    while (dirent* e = readdir(d)) {
        char* end = nullptr;
        long p = std::strtol(e->d_name, &end, 10);
        if (p <= 0 || *end != '\0') continue;
        std::string stat = read_file("/proc/" + std::string(e->d_name) + "/stat");
        // pid (comm) state ppid ...: comm may hold spaces and parentheses, so parse after the last ')'.
        size_t close = stat.rfind(')');
        if (close == std::string::npos) continue;
        int ppid = 0;
        char state = 0;
        if (std::sscanf(stat.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && ppid == pid_ &&
            state != 'Z')
            out.push_back(static_cast<pid_t>(p));
    }
    closedir(d);
    return out;
}

bool TempPostgres::stop_server(StopMode mode, std::chrono::milliseconds timeout) {
    {
        std::lock_guard lock(admin_mutex_);
        admin_.close();
    }
    if (pid_ <= 0) return true;
    std::vector<pid_t> children = server_processes();
    if (mode == StopMode::kKill) {
        kill(pid_, SIGKILL);
        for (pid_t c : children)
            kill(c, SIGKILL);
    } else {
        kill(pid_, mode == StopMode::kFast ? SIGINT : SIGQUIT);
    }
    bool exited = wait_pid(pid_, timeout).has_value();
    if (!exited) {
        kill(pid_, SIGKILL);
        wait_pid(pid_, 10s);
    }
    pid_ = -1;
    // Orphaned children (kKill) are reaped by init; wait until none is left holding the shared memory.
    auto start = Clock::now();
    for (pid_t c : children) {
        while (kill(c, 0) == 0 && elapsed_ms(start) < 10000) {
            std::string stat = read_file("/proc/" + std::to_string(c) + "/stat");
            size_t close = stat.rfind(')');
            if (close == std::string::npos || stat.compare(close + 1, 3, " Z ") == 0) break;
            std::this_thread::sleep_for(10ms);
        }
    }
    return exited;
}

bool TempPostgres::start_server() {
    if (pid_ > 0) return true;
    bool retry = false;
    // Same port: the pooler in front keeps its [databases] target. A port still held by a lingering socket is
    // retried for a few seconds (postgres binds with SO_REUSEADDR, so this is rare).
    auto start = Clock::now();
    while (true) {
        if (launch(port_, &retry)) return true;
        if (!retry || elapsed_ms(start) > 5000) return false;
        std::this_thread::sleep_for(100ms);
    }
}

bool TempPostgres::restart(StopMode mode) {
    return stop_server(mode) && start_server();
}

bool TempPostgres::signal_backend(pid_t backend, int sig) {
    return backend > 0 && kill(backend, sig) == 0;
}

size_t TempPostgres::log_size() const {
    struct stat st {};
    return stat(log_path().c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
}

bool TempPostgres::wait_recovered(size_t log_offset, std::chrono::milliseconds timeout) {
    {
        std::lock_guard lock(admin_mutex_);
        admin_.close();
    }
    auto start = Clock::now();
    // First the crash must have been noticed: until then the old server still answers pings.
    while (true) {
        std::string log = read_file(log_path());
        if (log.size() > log_offset &&
            (log.find("reinitializing", log_offset) != std::string::npos ||
             log.find("terminating any other active server processes", log_offset) != std::string::npos))
            break;
        if (Clock::now() - start > timeout) {
            error_ = "postgres did not log a crash restart:\n" + log_tail();
            return false;
        }
        std::this_thread::sleep_for(5ms);
    }
    std::string ping_dsn = admin_dsn() + " connect_timeout=2";
    while (PQping(ping_dsn.c_str()) != PQPING_OK) {
        if (Clock::now() - start > timeout) {
            error_ = "postgres did not accept logins after crash recovery:\n" + log_tail();
            return false;
        }
        std::this_thread::sleep_for(5ms);
    }
    up_since_ = Clock::now();
    std::lock_guard lock(admin_mutex_);
    return ensure_admin();
}

std::string TempPostgres::dsn(const std::string& user, const std::string& password,
                              const std::string& db) const {
    std::vector<std::pair<std::string, std::string>> kv = {
        {"host", host()}, {"port", std::to_string(port_)}, {"user", user}, {"dbname", db}};
    if (!password.empty()) kv.emplace_back("password", password);
    kv.emplace_back("sslmode", "disable");
    kv.emplace_back("gssencmode", "disable");
    kv.emplace_back("connect_timeout", "5");
    return conninfo(kv);
}

std::string TempPostgres::admin_dsn(const std::string& db) const {
    return conninfo({{"host", dir_}, {"port", std::to_string(port_)}, {"user", "postgres"}, {"dbname", db}});
}

std::string TempPostgres::pooler_target(const std::string& extra, const std::string& db) const {
    std::string s = "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + db;
    if (!extra.empty()) s += " " + extra;
    return s;
}

bool TempPostgres::ensure_admin() {
    if (admin_.ok()) return true;
    if (!admin_.connect(admin_dsn(), 10s)) {
        error_ = "admin connection failed: " + admin_.connect_error();
        return false;
    }
    return true;
}

QueryResult TempPostgres::exec(const std::string& sql, std::chrono::milliseconds timeout) {
    std::lock_guard lock(admin_mutex_);
    if (!ensure_admin()) {
        QueryResult r;
        r.error = error_;
        return r;
    }
    return admin_.exec(sql, timeout);
}

std::string TempPostgres::query_scalar(const std::string& sql) {
    QueryResult r = exec(sql);
    if (!r.ok()) return "<error: " + r.describe() + ">";
    if (r.rows.empty()) return "<no rows>";
    return r.value();
}

long long TempPostgres::query_int(const std::string& sql) {
    std::string v = query_scalar(sql);
    try {
        size_t used = 0;
        long long n = std::stoll(v, &used);
        return used == v.size() ? n : -1;
    } catch (...) {
        return -1;
    }
}

bool TempPostgres::create_role(const std::string& name, const std::string& password, PasswordKind kind,
                               bool superuser) {
    std::string ident = "\"" + name + "\"";
    std::string sql =
        "DO $$BEGIN CREATE ROLE " + ident + " LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END$$;";
    sql += "ALTER ROLE " + ident + (superuser ? " SUPERUSER" : " NOSUPERUSER") + ";";
    sql += std::string("SET password_encryption = '") +
           (kind == PasswordKind::kMd5 ? "md5" : "scram-sha-256") + "';";
    sql += "ALTER ROLE " + ident + " PASSWORD " + sql_literal(password) + ";";
    sql += "RESET password_encryption;";
    sql += "GRANT ALL ON SCHEMA public TO " + ident + ";";
    QueryResult r = exec(sql);
    if (!r.ok()) std::fprintf(stderr, "create_role(%s) failed: %s\n", name.c_str(), r.describe().c_str());
    return r.ok();
}

RunResult TempPostgres::pgbench_init(int scale) {
    SpawnOptions o;
    o.argv = {pgbench_path(),        "-i", "-q",       "-s",      std::to_string(scale), "-h", dir_, "-p",
              std::to_string(port_), "-U", "postgres", "postgres"};
    RunResult r = run_command(o, 300s);
    if (r.exit_code == 0) {
        QueryResult g = exec("GRANT ALL ON ALL TABLES IN SCHEMA public TO PUBLIC");
        if (!g.ok()) {
            r.exit_code = 1;
            r.output += "\nGRANT failed: " + g.describe();
        }
    }
    return r;
}

long long TempPostgres::count_backends(const std::string& where) {
    return query_int("select count(*) from pg_stat_activity where backend_type = 'client backend' and (" +
                     where + ")");
}

bool TempPostgres::wait_until(const std::string& sql, std::chrono::milliseconds timeout) {
    auto start = Clock::now();
    while (true) {
        if (query_scalar(sql) == "t") return true;
        if (Clock::now() - start > timeout) return false;
        std::this_thread::sleep_for(25ms);
    }
}

bool TempPostgres::wait_no_backends(const std::string& where, std::chrono::milliseconds timeout) {
    return wait_until(
        "select count(*) = 0 from pg_stat_activity where backend_type = 'client backend' and (" + where + ")",
        timeout);
}

}  // namespace itest
