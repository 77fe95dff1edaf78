// Owns the process side of `poolguard serve`: -u (switching the OS user), -d (daemonizing) and the pidfile.
#include "cli/process.h"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

namespace poolguard::process {

namespace {
std::string errno_text() {
    return std::strerror(errno);
}
}  // namespace

Status switch_user(const std::string& user) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr)
        return fail("-u " + user + ": no such user");
    if (::geteuid() == pw.pw_uid && ::getegid() == pw.pw_gid) return {};
    if (::initgroups(pw.pw_name, pw.pw_gid) != 0 || ::setgid(pw.pw_gid) != 0 || ::setuid(pw.pw_uid) != 0)
        return fail("failed to assume identity of user '" + user + "': " + errno_text());
    if (pw.pw_dir != nullptr) ::setenv("HOME", pw.pw_dir, 1);
    ::setenv("USER", pw.pw_name, 1);
    return {};
}

DaemonHandle::DaemonHandle(DaemonHandle&& other) noexcept
    : is_parent(other.is_parent),
      parent_exit_code(other.parent_exit_code),
      notify_fd_(std::exchange(other.notify_fd_, -1)) {}

DaemonHandle& DaemonHandle::operator=(DaemonHandle&& other) noexcept {
    if (this != &other) {
        if (notify_fd_ >= 0) ::close(notify_fd_);
        is_parent = other.is_parent;
        parent_exit_code = other.parent_exit_code;
        notify_fd_ = std::exchange(other.notify_fd_, -1);
    }
    return *this;
}

DaemonHandle::~DaemonHandle() {
    if (notify_fd_ >= 0) ::close(notify_fd_);
}

void DaemonHandle::started() {
    if (notify_fd_ < 0) return;
    const char ok = '1';
    ssize_t n;
    do {
        n = ::write(notify_fd_, &ok, 1);
    } while (n < 0 && errno == EINTR);
    ::close(notify_fd_);
    notify_fd_ = -1;
}

Result<DaemonHandle> daemonize() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail("daemon: pipe failed: " + errno_text());
    const pid_t first = ::fork();
    if (first < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        return fail("daemon: fork failed: " + errno_text());
    }
    if (first > 0) {
        // The original process: reap the intermediate child, then wait for the daemon's word.
        ::close(fds[1]);
        int status = 0;
        while (::waitpid(first, &status, 0) < 0 && errno == EINTR) {
        }
        char answer = 0;
        ssize_t n;
        do {
            n = ::read(fds[0], &answer, 1);
        } while (n < 0 && errno == EINTR);
        ::close(fds[0]);
        DaemonHandle parent;
        parent.is_parent = true;
        parent.parent_exit_code = (n == 1 && answer == '1') ? 0 : 1;
        return parent;
    }
    ::close(fds[0]);
    if (::setsid() < 0) std::_Exit(1);
    const pid_t second = ::fork();
    if (second < 0) std::_Exit(1);
    if (second > 0) std::_Exit(0);  // the intermediate child: the daemon is not a session leader
    const int null_fd = ::open("/dev/null", O_RDWR);
    if (null_fd >= 0) {
        ::dup2(null_fd, STDIN_FILENO);
        ::dup2(null_fd, STDOUT_FILENO);
        ::dup2(null_fd, STDERR_FILENO);
        if (null_fd > STDERR_FILENO) ::close(null_fd);
    }
    DaemonHandle daemon;
    daemon.notify_fd_ = fds[1];
    return daemon;
}

Result<PidFile> PidFile::write(const std::string& path) {
    const pid_t pid = ::getpid();
    const std::string tmp = path + ".tmp." + std::to_string(pid);
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << pid << '\n';
        out.close();
        if (!out) {
            ::unlink(tmp.c_str());
            return fail("cannot write pidfile " + path + ": " + errno_text());
        }
    }
    ::chmod(tmp.c_str(), 0644);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string why = errno_text();
        ::unlink(tmp.c_str());
        return fail("cannot write pidfile " + path + ": " + why);
    }
    return PidFile(path, pid);
}

PidFile::PidFile(PidFile&& other) noexcept
    : path_(std::move(other.path_)), pid_(std::exchange(other.pid_, 0)) {}

PidFile& PidFile::operator=(PidFile&& other) noexcept {
    if (this != &other) {
        path_ = std::move(other.path_);
        pid_ = std::exchange(other.pid_, 0);
    }
    return *this;
}

PidFile::~PidFile() {
    if (pid_ <= 0 || path_.empty()) return;
    std::ifstream in(path_);
    long held = 0;
    if (in >> held && held == static_cast<long>(pid_)) ::unlink(path_.c_str());
}

}  // namespace poolguard::process
