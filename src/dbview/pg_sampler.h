// Owns PgSampler: one libpq connection that samples pg_stat_activity into a dbview::Snapshot and cancels or
// terminates backends. Blocking I/O; used by the CLI (diagnose/recover/watch) and the control plane's
// threads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/error.h"
#include "dbview/snapshot.h"

namespace poolguard::dbview {

class PgSampler {
  public:
    // A libpq conninfo ("host=... dbname=...") or a postgres:// / postgresql:// URI. Nothing happens until
    // the first call that needs the server.
    explicit PgSampler(std::string conninfo);
    ~PgSampler();
    PgSampler(const PgSampler&) = delete;
    PgSampler& operator=(const PgSampler&) = delete;
    PgSampler(PgSampler&&) noexcept;
    PgSampler& operator=(PgSampler&&) noexcept;

    // One query over pg_stat_activity ⨝ pg_roles. Connects lazily; after a broken connection the next call
    // (and, once, this call when a reused connection turns out to be dead) reconnects. The Error carries
    // the server's SQLSTATE when there is one (28P01 bad password, 53300 too many clients, ...).
    Result<Snapshot> sample();
    // pg_cancel_backend / pg_terminate_backend. An Error when the backend does not exist (any more) or
    // this role may not signal it (42501).
    Status cancel_backend(int64_t pid);
    Status terminate_backend(int64_t pid);
    // The backend pid of this sampler's own connection, once connected.
    std::optional<int64_t> own_pid() const;

  private:
    struct Connection;
    Status ensure_connected();
    Status signal_backend(const char* function, int64_t pid);
    void disconnect();

    std::string conninfo_;
    std::unique_ptr<Connection> conn_;
};

// The SQLSTATE a libpq connection failure message stands for, when the text makes it clear (libpq hands no
// SQLSTATE for failures during connection start-up): 28P01, 28000, 53300, 3D000, 08001 (unreachable), or "".
std::string sqlstate_from_connect_message(const std::string& message);

}  // namespace poolguard::dbview
