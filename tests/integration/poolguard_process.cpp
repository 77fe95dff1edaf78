// Owns PoolguardProcess: writes ini + userlist, runs `poolguard serve` (or pgbouncer) and controls it.
#include "poolguard_process.h"

#include "pg_client.h"

#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <thread>

#ifndef POOLGUARD_BINARY
#define POOLGUARD_BINARY "poolguard"
#endif

namespace itest {

PoolerConfig& PoolerConfig::set(const std::string& key, const std::string& value) {
    for (auto& [k, v] : settings) {
        if (k == key) {
            v = value;
            return *this;
        }
    }
    settings.emplace_back(key, value);
    return *this;
}

PoolerConfig& PoolerConfig::database(const std::string& name, const std::string& value) {
    databases.push_back(name + " = " + value);
    return *this;
}

PoolerConfig& PoolerConfig::user(const std::string& name, const std::string& value) {
    users.push_back(name + " = " + value);
    return *this;
}

PoolerConfig& PoolerConfig::auth(const std::string& user, const std::string& password) {
    userlist.emplace_back(user, password);
    return *this;
}

std::optional<std::string> PoolerConfig::get(const std::string& key) const {
    for (const auto& [k, v] : settings) {
        if (k == key) return v;
    }
    return std::nullopt;
}

PoolerKind PoolguardProcess::default_kind() {
    const std::string target = env_or("POOLGUARD_IT_TARGET", "poolguard");
    if (target == "pgbouncer") return PoolerKind::kPgbouncer;
    if (target == "pgbouncer-1.18") return PoolerKind::kPgbouncer118;
    return PoolerKind::kPoolguard;
}

namespace {
struct PgbouncerLookup {
    std::string path, reason;
};

const PgbouncerLookup& pgbouncer_lookup() {
    static const PgbouncerLookup found = [] {
        PgbouncerLookup r;
        if (std::string env = env_or("POOLGUARD_PGBOUNCER", ""); !env.empty()) {
            if (::access(env.c_str(), X_OK) == 0) {
                r.path = env;
            } else {
                r.reason = "POOLGUARD_PGBOUNCER=" + env + " is not executable";
            }
            return r;
        }
#ifdef POOLGUARD_SOURCE_DIR
        const std::string script = std::string(POOLGUARD_SOURCE_DIR) + "/../shared/anchors/build-pgbouncer";
#else
        const std::string script = "../shared/anchors/build-pgbouncer";
#endif
        if (::access(script.c_str(), X_OK) != 0) {
            r.reason = "no POOLGUARD_PGBOUNCER and no " + script;
            return r;
        }
        SpawnOptions o;
        o.argv = {script};
        RunResult run = run_command(o, std::chrono::minutes(10));
        std::string out = run.output;
        // The path is the last line of its output (build logs may precede it).
        while (!out.empty() && (out.back() == '\n' || out.back() == ' '))
            out.pop_back();
        const auto nl = out.rfind('\n');
        const std::string last = nl == std::string::npos ? out : out.substr(nl + 1);
        if (run.exit_code == 0 && !last.empty() && ::access(last.c_str(), X_OK) == 0) {
            r.path = last;
        } else {
            r.reason = script + " failed (exit " + std::to_string(run.exit_code) + "): " + out.substr(0, 400);
        }
        return r;
    }();
    return found;
}
}  // namespace

std::string PoolguardProcess::pgbouncer_binary() {
    return pgbouncer_lookup().path;
}

std::string PoolguardProcess::pgbouncer_unavailable_reason() {
    const auto& r = pgbouncer_lookup();
    return r.path.empty() ? "PgBouncer 1.25.2 not available (set POOLGUARD_PGBOUNCER): " + r.reason : "";
}

std::string PoolguardProcess::binary() {
    return POOLGUARD_BINARY;
}

PoolguardProcess::PoolguardProcess(PoolerConfig config, PoolerKind kind)
    : config_(std::move(config)), kind_(kind) {
    if (auto p = config_.get("listen_port")) {
        port_ = std::atoi(p->c_str());
        port_fixed_ = true;
    }
}

PoolguardProcess::~PoolguardProcess() {
    if (pid_ > 0 && !exit_status_) {
        kill(pid_, SIGTERM);
        exit_status_ = wait_pid(pid_, 5s);
        if (!exit_status_) {
            kill(pid_, SIGKILL);
            exit_status_ = wait_pid(pid_, 10s);
        }
    }
    check_sanitizer_reports();
    if (::testing::Test::HasFailure() && !dir_.empty()) {
        std::fprintf(stderr, "----- %s log (%s) -----\n%s\n----- end of log -----\n",
                     kind_ != PoolerKind::kPoolguard ? "pgbouncer" : "poolguard", dir_.c_str(),
                     tail_file(output_path(), 12000).c_str());
    }
    if (!dir_.empty() && env_or("POOLGUARD_IT_KEEP", "") != "1") remove_tree(dir_);
}

void PoolguardProcess::check_sanitizer_reports() {
    if (sanitizer_checked_ || dir_.empty() || kind_ != PoolerKind::kPoolguard) return;
    if (pid_ > 0 && !exit_status_) return;  // still running: check later
    sanitizer_checked_ = true;
    std::string log = log_contents();
    for (const char* marker : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"}) {
        auto at = log.find(marker);
        if (at != std::string::npos) {
            ADD_FAILURE() << "sanitizer report in the pooler's log:\n"
                          << log.substr(at > 200 ? at - 200 : 0, 6000);
            return;
        }
    }
}

std::string PoolguardProcess::render_ini() const {
    std::ostringstream ini;
    ini << "; written by the poolguard integration tests\n";
    ini << "[databases]\n";
    for (const auto& l : config_.databases)
        ini << l << "\n";
    ini << "\n[users]\n";
    for (const auto& l : config_.users)
        ini << l << "\n";
    if (!config_.peers.empty()) {
        ini << "\n[peers]\n";
        for (const auto& l : config_.peers)
            ini << l << "\n";
    }
    ini << "\n[pgbouncer]\n";
    PoolerConfig effective = config_;
    auto set_default = [&](const std::string& k, const std::string& v) {
        if (!effective.get(k)) effective.settings.emplace_back(k, v);
    };
    set_default("listen_addr", "127.0.0.1");
    set_default("listen_port", std::to_string(port_));
    set_default("unix_socket_dir", dir_);
    set_default("auth_type", "trust");
    set_default("auth_file", userlist_path());
    for (const auto& [k, v] : effective.settings)
        ini << k << " = " << v << "\n";
    for (const auto& l : config_.raw_pgbouncer_lines)
        ini << l << "\n";
    return ini.str();
}

std::string PoolguardProcess::render_userlist() const {
    auto quote = [](const std::string& s) {
        std::string out = "\"";
        for (char c : s) {
            if (c == '"') out += '"';
            out += c;
        }
        return out + "\"";
    };
    std::string out;
    for (const auto& [u, p] : config_.userlist)
        out += quote(u) + " " + quote(p) + "\n";
    return out;
}

int PoolguardProcess::line_of(const std::string& key) const {
    std::istringstream in(render_ini());
    std::string line;
    int n = 0;
    bool in_pgbouncer = false;
    while (std::getline(in, line)) {
        ++n;
        if (line.rfind("[", 0) == 0) in_pgbouncer = line == "[pgbouncer]";
        if (in_pgbouncer && (line.rfind(key + " =", 0) == 0 || line.rfind(key + "=", 0) == 0)) return n;
    }
    return 0;
}

bool PoolguardProcess::write_files(std::string* error) {
    if (dir_.empty()) {
        dir_ = make_temp_dir("pgit-pooler");
        if (dir_.empty()) {
            *error = "mkdtemp failed";
            return false;
        }
    }
    if (!port_fixed_ && port_ == 0) port_ = free_tcp_port();
    if (!write_file(config_path(), render_ini()) || !write_file(userlist_path(), render_userlist())) {
        *error = "cannot write config files in " + dir_;
        return false;
    }
    if (kind_ != PoolerKind::kPoolguard && running_as_root()) {
        // pgbouncer refuses to run as root: it runs as `postgres`, which must own its files and socket dir.
        if (auto pg = postgres_os_user()) chown_tree(dir_, *pg);
    }
    return true;
}

pid_t PoolguardProcess::launch(std::string* error) {
    SpawnOptions o;
    if (kind_ == PoolerKind::kPoolguard) {
        o.argv = {binary(), "serve"};
    } else {
        const std::string pgb =
            kind_ == PoolerKind::kPgbouncer118 ? "/usr/sbin/pgbouncer" : pgbouncer_binary();
        if (pgb.empty()) {
            *error = pgbouncer_unavailable_reason();
            return -1;
        }
        o.argv = {pgb};
        o.as_postgres_when_root = true;
    }
    o.argv.insert(o.argv.end(), flags_.begin(), flags_.end());
    o.argv.push_back(config_path());
    o.argv.insert(o.argv.begin(), launcher_.begin(), launcher_.end());
    o.output_path = output_path();
    o.death_signal = SIGKILL;
    o.cwd = dir_;
    // Sanitizer builds: report leaks and errors into the log, which check_sanitizer_reports() reads.
    o.extra_env = {"ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1",
                   "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"};
    o.extra_env.insert(o.extra_env.end(), extra_env_.begin(), extra_env_.end());
    return spawn(o, error);
}

::testing::AssertionResult PoolguardProcess::start(std::chrono::milliseconds timeout) {
    for (int attempt = 0; attempt < 4; ++attempt) {
        std::string error;
        if (!write_files(&error)) return ::testing::AssertionFailure() << error;
        write_file(output_path(), "");
        exit_status_.reset();
        sanitizer_checked_ = false;
        pid_ = launch(&error);
        if (pid_ < 0) return ::testing::AssertionFailure() << error;
        auto started = Clock::now();
        bool retry = false;
        while (true) {
            if (auto st = wait_pid(pid_, 0ms)) {
                exit_status_ = st;
                std::string log = log_contents();
                if (!port_fixed_ && log.find("in use") != std::string::npos) {
                    retry = true;  // someone took our port between the probe and the bind
                    port_ = 0;
                    break;
                }
                return ::testing::AssertionFailure()
                       << "pooler exited with status " << *st << " before listening on port " << port_
                       << "\ncommand: "
                       << (kind_ == PoolerKind::kPoolguard ? binary() + " serve " : "pgbouncer ")
                       << config_path() << "\n----- config -----\n"
                       << render_ini() << "----- log -----\n"
                       << tail_file(output_path(), 12000);
            }
            if (port_listening(port_)) return ::testing::AssertionSuccess();
            if (Clock::now() - started > timeout) {
                return ::testing::AssertionFailure()
                       << "pooler did not listen on 127.0.0.1:" << port_ << " within " << timeout.count()
                       << " ms\n----- config -----\n"
                       << render_ini() << "----- log -----\n"
                       << tail_file(output_path(), 12000);
            }
            std::this_thread::sleep_for(10ms);
        }
        if (!retry) break;
    }
    return ::testing::AssertionFailure() << "pooler could not bind a free port\n" << tail_file(output_path());
}

std::optional<int> PoolguardProcess::run_until_exit(std::chrono::milliseconds timeout) {
    std::string error;
    if (!write_files(&error)) {
        ADD_FAILURE() << error;
        return std::nullopt;
    }
    pid_ = launch(&error);
    if (pid_ < 0) {
        ADD_FAILURE() << error;
        return std::nullopt;
    }
    return wait_exit(timeout);
}

std::string PoolguardProcess::dsn(const std::string& user, const std::string& password, const std::string& db,
                                  const std::string& extra) const {
    std::string s = "host=127.0.0.1 port=" + std::to_string(port_) + " user=" + quote_conninfo_value(user) +
                    " dbname=" + quote_conninfo_value(db);
    if (!password.empty()) s += " password=" + quote_conninfo_value(password);
    s += " sslmode=disable gssencmode=disable connect_timeout=5";
    if (!extra.empty()) s += " " + extra;
    return s;
}

std::string PoolguardProcess::unix_dsn(const std::string& user, const std::string& password,
                                       const std::string& db, const std::string& extra) const {
    std::string s = "host=" + dir_ + " port=" + std::to_string(port_) +
                    " user=" + quote_conninfo_value(user) + " dbname=" + quote_conninfo_value(db);
    if (!password.empty()) s += " password=" + quote_conninfo_value(password);
    s += " connect_timeout=5";
    if (!extra.empty()) s += " " + extra;
    return s;
}

bool PoolguardProcess::send_signal(int sig) {
    return pid_ > 0 && !exit_status_ && kill(pid_, sig) == 0;
}

bool PoolguardProcess::rewrite_config(PoolerConfig config) {
    config_ = std::move(config);
    if (auto p = config_.get("listen_port")) {
        port_ = std::atoi(p->c_str());
        port_fixed_ = true;
    }
    std::string error;
    return write_files(&error);
}

std::optional<int> PoolguardProcess::wait_exit(std::chrono::milliseconds timeout) {
    if (exit_status_) return exit_status_;
    if (pid_ <= 0) return std::nullopt;
    exit_status_ = wait_pid(pid_, timeout);
    if (exit_status_) check_sanitizer_reports();
    return exit_status_;
}

bool PoolguardProcess::running() {
    if (pid_ <= 0 || exit_status_) return false;
    if (auto st = wait_pid(pid_, 0ms)) {
        exit_status_ = st;
        return false;
    }
    return true;
}

std::string PoolguardProcess::output_contents() const {
    return read_file(output_path());
}

std::string PoolguardProcess::log_contents() const {
    std::string log = read_file(output_path());
    if (auto f = config_.get("logfile"); f && !f->empty()) {
        std::string path = f->front() == '/' ? *f : dir_ + "/" + *f;
        log += read_file(path);
    }
    return log;
}

bool PoolguardProcess::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout) {
    auto start = Clock::now();
    while (log_contents().find(needle) == std::string::npos) {
        if (Clock::now() - start > timeout) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

}  // namespace itest
