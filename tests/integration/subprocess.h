// Owns the integration harness's OS helpers: spawning/awaiting child processes, temp dirs, ports, files.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace itest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// The OS account the PostgreSQL server and pgbouncer run as when the tests run as root.
struct OsUser {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string name;
};

bool running_as_root();
// The `postgres` OS user (exists once Debian's postgresql package is installed).
std::optional<OsUser> postgres_os_user();

struct SpawnOptions {
    std::vector<std::string> argv;       // argv[0] is the program (absolute path or looked up in PATH)
    std::string output_path;             // stdout+stderr appended here; empty = /dev/null
    bool as_postgres_when_root = false;  // drop to the postgres OS user in the child when we are root
    int death_signal = 9;                // sent to the child when the spawning thread dies (PDEATHSIG)
    std::vector<std::string> extra_env;  // "NAME=value" added to (or replacing in) the environment
    std::string cwd;                     // empty = inherit
};

// fork+exec without a shell. Only async-signal-safe calls happen in the child. Returns -1 (and sets *error)
// on failure. The child closes every inherited fd above 2.
pid_t spawn(const SpawnOptions& options, std::string* error = nullptr);

// Exit status decoded from waitpid: the exit code, or 128 + signal number when killed by a signal.
int decode_wait_status(int status);

// Waits up to `timeout` for `pid` to exit; returns the decoded status, nullopt on timeout.
std::optional<int> wait_pid(pid_t pid, std::chrono::milliseconds timeout);

// SIGTERM, then SIGKILL after `grace`; always reaps. Returns the decoded status (or -1 if not a child).
int terminate_pid(pid_t pid, std::chrono::milliseconds grace);

struct RunResult {
    int exit_code = -1;  // decoded (see decode_wait_status); -1 when it could not be started
    bool timed_out = false;
    std::string output;  // stdout+stderr
};

// Runs a command to completion (killed after `timeout`), capturing stdout+stderr.
RunResult run_command(SpawnOptions options, std::chrono::milliseconds timeout);

// A fresh directory from mkdtemp under $TMPDIR (or /tmp), e.g. /tmp/pgit-abc123.
std::string make_temp_dir(const std::string& prefix);
void remove_tree(const std::string& path);
// chown -R to the given user (no-op unless root).
void chown_tree(const std::string& path, const OsUser& user);

// A TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close).
int free_tcp_port();
// True when a TCP connect to 127.0.0.1:port succeeds.
bool port_accepts(int port);
// True when some socket LISTENs on the TCP port (per /proc/net/tcp{,6}); does not connect.
bool port_listening(int port);

std::string read_file(const std::string& path);
bool write_file(const std::string& path, const std::string& content);
// The last `max_bytes` of a file, for failure messages.
std::string tail_file(const std::string& path, size_t max_bytes = 8192);

// Value of an environment variable, or `fallback`.
std::string env_or(const char* name, const std::string& fallback);

// Milliseconds elapsed since `start`.
long long elapsed_ms(Clock::time_point start);

}  // namespace itest
