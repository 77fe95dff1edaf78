// Owns TempMariadb (mariadb-install-db + mariadbd in a temp dir) and the MyConn test client.
#include "temp_mariadb.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

namespace itest {

namespace {

std::optional<OsUser> mysql_os_user() {
    struct passwd* pw = getpwnam("mysql");
    if (pw == nullptr) return std::nullopt;
    return OsUser{pw->pw_uid, pw->pw_gid, "mysql"};
}

}  // namespace

MyConn::MyConn(const std::string& user, const std::string& password, int port, const std::string& socket,
               const std::string& db) {
    mysql_ = mysql_init(nullptr);
    if (mysql_ == nullptr) return;
    unsigned timeout = 5;
    mysql_options(mysql_, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    connected_ =
        mysql_real_connect(mysql_, socket.empty() ? "127.0.0.1" : "localhost", user.c_str(), password.c_str(),
                           db.empty() ? nullptr : db.c_str(), static_cast<unsigned>(port),
                           socket.empty() ? nullptr : socket.c_str(), 0) != nullptr;
}

MyConn::MyConn(MyConn&& other) noexcept : mysql_(other.mysql_), connected_(other.connected_) {
    other.mysql_ = nullptr;
    other.connected_ = false;
}

MyConn& MyConn::operator=(MyConn&& other) noexcept {
    if (this != &other) {
        if (mysql_ != nullptr) mysql_close(mysql_);
        mysql_ = other.mysql_;
        connected_ = other.connected_;
        other.mysql_ = nullptr;
        other.connected_ = false;
    }
    return *this;
}

MyConn::~MyConn() {
    if (mysql_ != nullptr) mysql_close(mysql_);
}

std::string MyConn::error() const {
    return mysql_ != nullptr ? mysql_error(mysql_) : "mysql_init failed";
}

unsigned long MyConn::thread_id() const {
    return ok() ? mysql_thread_id(mysql_) : 0;
}

std::optional<std::vector<std::vector<std::string>>> MyConn::query(const std::string& sql) {
    if (!ok() || mysql_query(mysql_, sql.c_str()) != 0) return std::nullopt;
    std::vector<std::vector<std::string>> rows;
    MYSQL_RES* res = mysql_store_result(mysql_);
    if (res == nullptr) {
        if (mysql_field_count(mysql_) != 0) return std::nullopt;
        return rows;
    }
    const unsigned n = mysql_num_fields(res);
    while (MYSQL_ROW row = mysql_fetch_row(res)) {
        std::vector<std::string> r;
        for (unsigned i = 0; i < n; ++i)
            r.emplace_back(row[i] != nullptr ? row[i] : "");
        rows.push_back(std::move(r));
    }
    mysql_free_result(res);
    return rows;
}

bool MyConn::query_async(const std::string& sql) {
    return ok() && mysql_send_query(mysql_, sql.c_str(), static_cast<unsigned long>(sql.size())) == 0;
}

bool MyConn::finish_async() {
    if (!ok() || mysql_read_query_result(mysql_) != 0) return false;
    if (MYSQL_RES* res = mysql_store_result(mysql_)) mysql_free_result(res);
    return true;
}

TempMariadb::TempMariadb(TempMariadbOptions options) : options_(options) {
    if (!start()) {
        if (error_.empty()) error_ = "mariadb did not start";
        stop();
    }
}

TempMariadb::~TempMariadb() {
    stop();
    if (!dir_.empty()) remove_tree(dir_);
}

bool TempMariadb::start() {
    std::optional<OsUser> user;
    if (running_as_root()) {
        user = mysql_os_user();
        if (!user) {
            error_ = "running as root but OS user 'mysql' does not exist (install mariadb-server)";
            return false;
        }
    }
    if (access("/usr/sbin/mariadbd", X_OK) != 0) {
        error_ = "/usr/sbin/mariadbd not found (install mariadb-server via scripts/deps)";
        return false;
    }
    dir_ = make_temp_dir("myit");
    if (dir_.empty()) {
        error_ = std::string("mkdtemp failed: ") + strerror(errno);
        return false;
    }
    // Each server gets its own tmpdir: mariadbd removes every "#sql*" file in its tmpdir at start, so
    // servers sharing /tmp (tests run in parallel) delete each other's temporary tables, and
    // mariadb-install-db then fails with "Unknown table 'mysql.tmp_user_sys'".
    const std::string tmpdir = dir_ + "/tmp";
    if (mkdir(tmpdir.c_str(), 0700) != 0) {
        error_ = std::string("mkdir ") + tmpdir + ": " + strerror(errno);
        return false;
    }
    if (user) chown_tree(dir_, *user);
    SpawnOptions install;
    install.argv = {"mariadb-install-db",
                    "--no-defaults",
                    "--datadir=" + dir_ + "/data",
                    "--auth-root-authentication-method=normal",
                    "--skip-test-db",
                    "--tmpdir=" + tmpdir};
    if (user) install.argv.push_back("--user=mysql");
    RunResult r = run_command(install, 120s);
    if (r.exit_code != 0) {
        error_ = "mariadb-install-db failed: " + r.output.substr(0, 2000);
        return false;
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
        port_ = free_tcp_port();
        SpawnOptions o;
        o.argv = {"/usr/sbin/mariadbd",
                  "--no-defaults",
                  "--datadir=" + dir_ + "/data",
                  "--tmpdir=" + tmpdir,
                  "--port=" + std::to_string(port_),
                  "--bind-address=127.0.0.1",
                  "--socket=" + socket_path(),
                  "--pid-file=" + dir_ + "/mariadbd.pid",
                  "--skip-log-bin",
                  "--skip-name-resolve",
                  "--max-connections=" + std::to_string(options_.max_connections),
                  "--innodb-buffer-pool-size=16M",
                  "--innodb-log-file-size=8M",
                  "--performance-schema=OFF",
                  "--log-error=" + dir_ + "/mariadbd.log"};
        if (user) o.argv.push_back("--user=mysql");
        o.death_signal = SIGKILL;
        pid_ = spawn(o, &error_);
        if (pid_ < 0) return false;
        const auto started = Clock::now();
        while (elapsed_ms(started) < 30000) {
            if (wait_pid(pid_, 0ms)) {
                pid_ = -1;
                break;
            }
            MyConn probe("root", "", 0, socket_path());
            if (probe.ok()) return true;
            std::this_thread::sleep_for(100ms);
        }
        if (pid_ > 0) {
            error_ = "mariadbd did not accept connections within 30 s: " + log_tail();
            return false;
        }
        const std::string log = log_tail();
        if (log.find("Address already in use") == std::string::npos) {
            error_ = "mariadbd exited: " + log;
            return false;
        }
    }
    error_ = "could not find a free port for mariadbd";
    return false;
}

void TempMariadb::stop() {
    if (pid_ > 0) terminate_pid(pid_, 10s);
    pid_ = -1;
}

std::string TempMariadb::dsn(const std::string& user, const std::string& password,
                             const std::string& db) const {
    return "mysql://" + user + ":" + password + "@127.0.0.1:" + std::to_string(port_) + "/" + db;
}

bool TempMariadb::exec(const std::string& sql, std::string* error) {
    MyConn root("root", "", 0, socket_path());
    if (!root.ok() || !root.query(sql)) {
        if (error) *error = root.error();
        return false;
    }
    return true;
}

bool TempMariadb::create_user(const std::string& name, const std::string& password,
                              const std::string& grants) {
    return exec("CREATE USER '" + name + "'@'127.0.0.1' IDENTIFIED BY '" + password + "'") &&
           exec("GRANT " + grants + " TO '" + name + "'@'127.0.0.1'");
}

long long TempMariadb::count_threads(const std::string& where) {
    MyConn root("root", "", 0, socket_path());
    auto rows = root.query("SELECT count(*) FROM information_schema.PROCESSLIST WHERE " + where);
    if (!rows || rows->empty()) return -1;
    return std::stoll(rows->front().front());
}

}  // namespace itest
