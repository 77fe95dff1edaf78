// Owns the process side of `poolguard serve`: -u (switching the OS user), -d (daemonizing) and the pidfile.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/error.h"

namespace poolguard::process {

// Assumes the identity of an OS user (its uid, gid and supplementary groups), as `pgbouncer -u USER`. A no-op
// when the process already runs as that user; an error when it may not switch (not root) or no such user.
Status switch_user(const std::string& user);

// The result of daemonize(): in the original process `is_parent` with the exit code it should return (0 once
// the daemon reported started(), 1 when it exited before that); in the daemon a handle to report success.
class DaemonHandle {
  public:
    DaemonHandle() = default;
    DaemonHandle(DaemonHandle&& other) noexcept;
    DaemonHandle& operator=(DaemonHandle&& other) noexcept;
    DaemonHandle(const DaemonHandle&) = delete;
    DaemonHandle& operator=(const DaemonHandle&) = delete;
    ~DaemonHandle();

    bool is_parent = false;
    int parent_exit_code = 0;
    // In the daemon: tells the waiting parent that the pooler listens (the parent then exits 0).
    void started();

  private:
    friend Result<DaemonHandle> daemonize();
    int notify_fd_ = -1;
};

// Forks into the background (new session, second fork, stdin/stdout/stderr on /dev/null, cwd kept). Call
// before any thread or io_context exists. The original process waits until the daemon calls started() or
// exits.
Result<DaemonHandle> daemonize();

// A pidfile holding this process's PID while it runs: written atomically (temp file + rename); removed by the
// destructor unless it no longer holds our PID (a newer instance, e.g. a rolling restart, wrote its own).
class PidFile {
  public:
    static Result<PidFile> write(const std::string& path);
    PidFile(PidFile&& other) noexcept;
    PidFile& operator=(PidFile&& other) noexcept;
    PidFile(const PidFile&) = delete;
    PidFile& operator=(const PidFile&) = delete;
    ~PidFile();

  private:
    PidFile(std::string path, pid_t pid) : path_(std::move(path)), pid_(pid) {}
    std::string path_;
    pid_t pid_ = 0;
};

}  // namespace poolguard::process
