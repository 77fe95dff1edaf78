// Owns TempMariadb: a throwaway MariaDB server (Debian's mariadbd) in a temp dir on a free port, plus a
// small RAII client (MyConn) for tests that need MySQL sessions.
#pragma once

#include <sys/types.h>

#include <mysql.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "subprocess.h"

namespace itest {

// A libmariadb connection for tests. Blocking calls; query_async + finish_async for a statement that runs
// while the test does other things (SLEEP()).
class MyConn {
  public:
    MyConn() = default;
    // host "127.0.0.1" over TCP, or a Unix socket path when `socket` is set.
    MyConn(const std::string& user, const std::string& password, int port, const std::string& socket = "",
           const std::string& db = "");
    MyConn(MyConn&& other) noexcept;
    MyConn& operator=(MyConn&& other) noexcept;
    MyConn(const MyConn&) = delete;
    MyConn& operator=(const MyConn&) = delete;
    ~MyConn();

    bool ok() const { return mysql_ != nullptr && connected_; }
    std::string error() const;
    unsigned long thread_id() const;
    // Runs one statement and returns its rows as text (NULL = ""); nullopt on error (see error()).
    std::optional<std::vector<std::vector<std::string>>> query(const std::string& sql);
    // Sends a statement without waiting for it.
    bool query_async(const std::string& sql);
    // Reads the answer of query_async (blocks); false on error.
    bool finish_async();

  private:
    MYSQL* mysql_ = nullptr;
    bool connected_ = false;
};

struct TempMariadbOptions {
    int max_connections = 20;
};

// Starts in the constructor (check ok()/error()); stops it (SIGTERM, then SIGKILL) and deletes its dir in the
// destructor. As root, mariadbd and mariadb-install-db run with --user=mysql. root has no password over the
// Unix socket; create_user() adds TCP accounts ('name'@'127.0.0.1').
class TempMariadb {
  public:
    explicit TempMariadb(TempMariadbOptions options = {});
    ~TempMariadb();
    TempMariadb(const TempMariadb&) = delete;
    TempMariadb& operator=(const TempMariadb&) = delete;

    bool ok() const { return pid_ > 0 && error_.empty(); }
    const std::string& error() const { return error_; }
    int port() const { return port_; }
    std::string socket_path() const { return dir_ + "/mysqld.sock"; }
    std::string log_tail() const { return tail_file(dir_ + "/mariadbd.log", 6000); }

    // mysql://user:password@127.0.0.1:port/db
    std::string dsn(const std::string& user, const std::string& password,
                    const std::string& db = "mysql") const;
    // As root over the socket; false (with error()) on failure.
    bool exec(const std::string& sql, std::string* error = nullptr);
    // CREATE USER name@127.0.0.1 with the grants given ("ALL ON *.*", "SELECT ON *.*").
    bool create_user(const std::string& name, const std::string& password, const std::string& grants);
    // Number of PROCESSLIST rows matching `where` (e.g. "USER = 'app'"), -1 on error.
    long long count_threads(const std::string& where);

  private:
    bool start();
    void stop();

    TempMariadbOptions options_;
    std::string dir_;
    std::string error_;
    int port_ = 0;
    pid_t pid_ = -1;
};

}  // namespace itest
