// Owns MysqlSampler: one libmariadb connection that samples information_schema.PROCESSLIST (+ INNODB_TRX)
// into a dbview::Snapshot and runs KILL QUERY / KILL. Works with MariaDB and MySQL. Blocking I/O.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/error.h"
#include "dbview/dsn.h"
#include "dbview/snapshot.h"

namespace poolguard::dbview {

// reserved_connections is always 0 for MySQL/MariaDB: the one extra connection the server accepts for a
// SUPER (CONNECTION ADMIN) user is *on top of* max_connections (max_connections + 1), and extra_port has
// its own extra_max_connections, so every one of the max_connections slots is usable by ordinary clients.
// Sessions: Command "Sleep" is idle, or idle in transaction when INNODB_TRX shows a transaction for the
// thread (only transactions that touched InnoDB are visible there); "Binlog Dump*" is replication;
// "Daemon"/"Slave_*" and the "system user"/"event_scheduler" threads are system. superuser means the account
// has Super_priv in mysql.user (read once per connection; "root" when that table is not readable).
// Application names are not in PROCESSLIST: `application` stays "".
class MysqlSampler {
  public:
    // A mysql:// (or mariadb://) DSN; see parse_dsn. Parse errors are reported by sample().
    explicit MysqlSampler(std::string dsn);
    ~MysqlSampler();
    MysqlSampler(const MysqlSampler&) = delete;
    MysqlSampler& operator=(const MysqlSampler&) = delete;
    MysqlSampler(MysqlSampler&&) noexcept;
    MysqlSampler& operator=(MysqlSampler&&) noexcept;

    // Connects lazily, reconnects after failure. The Error's sqlstate holds the MySQL error number as text
    // ("1045" access denied, "1040" too many connections, "2003" cannot connect, ...).
    Result<Snapshot> sample();
    Status cancel_backend(int64_t id);     // KILL QUERY id
    Status terminate_backend(int64_t id);  // KILL id
    std::optional<int64_t> own_pid() const;

  private:
    struct Connection;
    Status ensure_connected();
    Status run_kill(const std::string& verb, int64_t id);

    std::string dsn_text_;
    std::unique_ptr<Connection> conn_;
};

}  // namespace poolguard::dbview
