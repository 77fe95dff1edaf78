// Owns the integration harness's OS helpers: spawning/awaiting child processes, temp dirs, ports, files.
#include "subprocess.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace itest {

bool running_as_root() {
    return geteuid() == 0;
}

std::optional<OsUser> postgres_os_user() {
    struct passwd pwd;
    struct passwd* result = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r("postgres", &pwd, buf.data(), buf.size(), &result) != 0 || result == nullptr) {
        return std::nullopt;
    }
    return OsUser{pwd.pw_uid, pwd.pw_gid, pwd.pw_name};
}

namespace {

std::string resolve_program(const std::string& program) {
    if (program.find('/') != std::string::npos) return program;
    std::string path = env_or("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin");
    std::stringstream ss(path);
    std::string dir;
    while (std::getline(ss, dir, ':')) {
        if (dir.empty()) continue;
        std::string candidate = dir + "/" + program;
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
    return program;
}

std::vector<std::string> build_env(const std::vector<std::string>& extra) {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        std::string entry(*e);
        std::string name = entry.substr(0, entry.find('='));
        bool replaced = false;
        for (const auto& x : extra) {
            if (x.substr(0, x.find('=')) == name) replaced = true;
        }
        if (!replaced) env.push_back(entry);
    }
    for (const auto& x : extra)
        env.push_back(x);
    return env;
}

[[noreturn]] void child_fail(int errfd, int err) {
    ssize_t n = write(errfd, &err, sizeof err);
    (void)n;
    _exit(127);
}

}  // namespace

pid_t spawn(const SpawnOptions& options, std::string* error) {
    if (options.argv.empty()) {
        if (error) *error = "spawn: empty argv";
        return -1;
    }
    // Everything the child needs is prepared here: after fork only async-signal-safe calls are allowed.
    std::string program = resolve_program(options.argv[0]);
    std::vector<char*> argv;
    for (const auto& a : options.argv)
        argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env_strings = build_env(options.extra_env);
    std::vector<char*> envp;
    for (auto& e : env_strings)
        envp.push_back(e.data());
    envp.push_back(nullptr);

    std::optional<OsUser> drop_to;
    if (options.as_postgres_when_root && running_as_root()) {
        drop_to = postgres_os_user();
        if (!drop_to) {
            if (error) *error = "spawn: OS user 'postgres' does not exist (install postgresql)";
            return -1;
        }
    }
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        if (error) *error = std::string("pipe2: ") + strerror(errno);
        return -1;
    }
    const pid_t parent = getpid();
    const char* out_path = options.output_path.empty() ? "/dev/null" : options.output_path.c_str();
    const char* cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
    const int death_signal = options.death_signal;

    pid_t pid = fork();
    if (pid < 0) {
        if (error) *error = std::string("fork: ") + strerror(errno);
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        int errfd = pipefd[1];
        int devnull = open("/dev/null", O_RDONLY);
        int out = open(out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (devnull < 0 || out < 0) child_fail(errfd, errno);
        if (dup2(devnull, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) child_fail(errfd, errno);
        if (errfd != 3) {
            if (dup2(errfd, 3) < 0) child_fail(errfd, errno);
            errfd = 3;
        }
        fcntl(errfd, F_SETFD, FD_CLOEXEC);
        close_range(4, ~0U, 0);
        sigset_t all;
        sigemptyset(&all);
        sigprocmask(SIG_SETMASK, &all, nullptr);
        signal(SIGPIPE, SIG_DFL);
        if (drop_to) {
            if (setgroups(0, nullptr) != 0 || setgid(drop_to->gid) != 0 || setuid(drop_to->uid) != 0) {
                child_fail(errfd, errno);
            }
        }
        // After the uid change (which clears it): die with the thread that spawned us.
        if (death_signal > 0) {
            prctl(PR_SET_PDEATHSIG, death_signal);
            if (getppid() != parent) _exit(126);
        }
        if (cwd != nullptr && chdir(cwd) != 0) child_fail(errfd, errno);
        execve(program.c_str(), argv.data(), envp.data());
        child_fail(errfd, errno);
    }
    close(pipefd[1]);
    int child_errno = 0;
    ssize_t n;
    do {
        n = read(pipefd[0], &child_errno, sizeof child_errno);
    } while (n < 0 && errno == EINTR);
    close(pipefd[0]);
    if (n > 0) {
        int status;
        waitpid(pid, &status, 0);
        if (error) *error = "cannot execute " + program + ": " + strerror(child_errno);
        return -1;
    }
    return pid;
}

int decode_wait_status(int status) {
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
}

std::optional<int> wait_pid(pid_t pid, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    auto pause = 2ms;
    while (true) {
        int status = 0;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) return decode_wait_status(status);
        if (r < 0 && errno != EINTR) return -1;
        if (Clock::now() >= deadline) return std::nullopt;
        std::this_thread::sleep_for(pause);
        pause = std::min<std::chrono::milliseconds>(pause * 2, 20ms);
    }
}

int terminate_pid(pid_t pid, std::chrono::milliseconds grace) {
    if (pid <= 0) return -1;
    kill(pid, SIGTERM);
    if (auto st = wait_pid(pid, grace)) return *st;
    kill(pid, SIGKILL);
    auto st = wait_pid(pid, 10s);
    return st.value_or(-1);
}

RunResult run_command(SpawnOptions options, std::chrono::milliseconds timeout) {
    RunResult result;
    std::string tmpl = env_or("TMPDIR", "/tmp") + "/pgit-out-XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd < 0) {
        result.output = std::string("mkstemp: ") + strerror(errno);
        return result;
    }
    close(fd);
    options.output_path = tmpl;
    std::string error;
    pid_t pid = spawn(options, &error);
    if (pid < 0) {
        unlink(tmpl.c_str());
        result.output = error;
        return result;
    }
    auto st = wait_pid(pid, timeout);
    if (!st) {
        result.timed_out = true;
        kill(pid, SIGKILL);
        st = wait_pid(pid, 10s);
    }
    result.exit_code = st.value_or(-1);
    result.output = read_file(tmpl);
    unlink(tmpl.c_str());
    return result;
}

std::string make_temp_dir(const std::string& prefix) {
    std::string tmpl = env_or("TMPDIR", "/tmp") + "/" + prefix + "-XXXXXX";
    if (mkdtemp(tmpl.data()) == nullptr) return {};
    return tmpl;
}

void remove_tree(const std::string& path) {
    if (path.empty()) return;
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

void chown_tree(const std::string& path, const OsUser& user) {
    if (!running_as_root()) return;
    std::error_code ec;
    if (lchown(path.c_str(), user.uid, user.gid) != 0) return;
    for (auto it = std::filesystem::recursive_directory_iterator(path, ec);
         !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
        int r = lchown(it->path().c_str(), user.uid, user.gid);
        (void)r;
    }
}

int free_tcp_port() {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int port = -1;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
        socklen_t len = sizeof addr;
        if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) port = ntohs(addr.sin_port);
    }
    close(fd);
    return port;
}

bool port_accepts(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
}

bool port_listening(int port) {
    char hex[8];
    std::snprintf(hex, sizeof hex, ":%04X", port);
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::istringstream in(read_file(table));
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            if (state == "0A" && local.size() > 5 && local.compare(local.size() - 5, 5, hex) == 0)
                return true;
        }
    }
    return false;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {};
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool write_file(const std::string& path, const std::string& content) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    if (!out) return false;
    out << content;
    return static_cast<bool>(out);
}

std::string tail_file(const std::string& path, size_t max_bytes) {
    std::string content = read_file(path);
    if (content.size() <= max_bytes) return content;
    return "...(truncated)...\n" + content.substr(content.size() - max_bytes);
}

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return (v != nullptr && *v != '\0') ? std::string(v) : fallback;
}

long long elapsed_ms(Clock::time_point start) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

}  // namespace itest
