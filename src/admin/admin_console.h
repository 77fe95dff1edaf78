// Owns the admin console's command language (SHOW / SET / PAUSE / ...), sans-I/O, as PgBouncer 1.25's.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "admin/admin_backend.h"

namespace poolguard::admin {

// Runs the commands an admin or stats user sends to the virtual database `pgbouncer`, turning each Query
// message's text into complete backend response messages. It never does I/O and never touches pools or
// sessions itself: everything it shows or changes goes through the AdminBackend.
//
// Language (keywords case-insensitive, extra whitespace and a trailing ';' allowed, several commands may be
// separated by ';'):
//   SHOW HELP|POOLS|CLIENTS|SERVERS|STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS|DATABASES|USERS|CONFIG|LISTS
//        |VERSION|STATE|FDS|SOCKETS|ACTIVE_SOCKETS|PEERS|PEER_POOLS|MEM|DNS_HOSTS|DNS_ZONES
//        |GUARD|CLASSES|BREAKERS|ADAPTIVE   (SELECT is accepted as a synonym of SHOW, as PgBouncer does)
//   SHOW client_encoding|datestyle|...       fixed values for drivers that probe them
//   SET key = value | SET key TO value       value: a bare word or a 'quoted string' ('' = one quote)
//   PAUSE [db]  RESUME [db]  DISABLE db  ENABLE db  RELOAD  KILL [db]  KILL_CLIENT id  RECONNECT [db]
//   WAIT_CLOSE [db]  SUSPEND  SHUTDOWN [WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS]
// A database name may be written as a "double-quoted identifier" ("" = one quote); a bare one keeps its case.
//
// Every command answers RowDescription + DataRow* + CommandComplete (tag "SHOW" for every SHOW; the verb in
// upper case for control commands, "SET key=value" for SET, as PgBouncer), or an ErrorResponse, after which
// the rest of the query is skipped. Errors: 42601 for a command the console does not understand, 42501 when a
// stats user tries anything but SHOW, 0A000 for what the backend does not implement, and the
// backend's own SQLSTATE (08P01 when it gives none) when a control verb fails.
class AdminConsole {
  public:
    // `can_modify`: true for admin_users (every command); false for stats_users (SHOW only).
    AdminConsole(AdminBackend& backend, bool can_modify);

    // Executes the text of one simple Query message, appending the complete response messages to `out`, but
    // not the final ReadyForQuery (the session adds it). An empty query (nothing but whitespace and ';')
    // answers EmptyQueryResponse. Never throws for any input; an exception from the backend becomes an
    // ErrorResponse (XX000).
    void execute(std::string_view sql, std::string& out);

    // WAIT_CLOSE [db] or SUSPEND succeeded: execute() stopped after it. The session waits (in its own
    // coroutine, so other admin consoles keep working) — WAIT_CLOSE until the backend's
    // close_needed_servers(db) is 0, SUSPEND until unflushed_clients() is 0 or suspend_timeout passed (then
    // drop_unflushed_clients()) — and calls resume(), which runs the statements that followed in the query.
    struct PendingWait {
        enum class Kind { kWaitClose, kSuspend } kind = Kind::kWaitClose;
        std::string database;  // WAIT_CLOSE's; empty = all
    };
    const std::optional<PendingWait>& pending_wait() const { return wait_; }
    void resume(std::string& out);

  private:
    void run_statements(const std::vector<std::string>& statements, std::string& out);

    AdminBackend& backend_;
    bool can_modify_;
    std::optional<PendingWait> wait_;
    std::vector<std::string> rest_;  // statements after a pending WAIT_CLOSE
};

}  // namespace poolguard::admin
