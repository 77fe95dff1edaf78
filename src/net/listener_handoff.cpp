// Owns the socket-level helpers of the listener hand-off (see listener_handoff.h).
#include "net/listener_handoff.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace poolguard::net::handoff {

namespace {
constexpr std::string_view kPrefix = "poolguard-listeners/";
constexpr size_t kMaxFds = 64;
}  // namespace

std::string socket_name(int port, pid_t pid) {
    return std::string(kPrefix) + std::to_string(port) + "/" + std::to_string(pid);
}

std::vector<pid_t> sibling_pids(std::string_view text, int port, pid_t self) {
    // Each line ends with the path; abstract names are shown with a leading '@'.
    const std::string wanted = "@" + std::string(kPrefix) + std::to_string(port) + "/";
    std::vector<pid_t> pids;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        const size_t at = line.rfind(' ');
        std::string_view path = at == std::string_view::npos ? line : line.substr(at + 1);
        if (!path.starts_with(wanted)) continue;
        path.remove_prefix(wanted.size());
        pid_t pid = 0;
        auto [ptr, ec] = std::from_chars(path.data(), path.data() + path.size(), pid);
        if (ec != std::errc{} || ptr != path.data() + path.size() || pid <= 0 || pid == self) continue;
        pids.push_back(pid);
    }
    std::sort(pids.begin(), pids.end(), std::greater<>());
    pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
    return pids;
}

bool send_fds(int sock, std::span<const int> fds, std::error_code& ec) {
    if (fds.empty() || fds.size() > kMaxFds) {
        ec = std::make_error_code(std::errc::invalid_argument);
        return false;
    }
    char tag = 'L';
    iovec iov{&tag, 1};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * fds.size()), 0);
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
    ssize_t n;
    do {
        n = ::sendmsg(sock, &msg, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n != 1) {
        ec = std::error_code(n < 0 ? errno : EIO, std::system_category());
        return false;
    }
    ec.clear();
    return true;
}

std::vector<int> receive_fds(int sock, size_t max_fds, std::error_code& ec) {
    max_fds = std::min(max_fds, kMaxFds);
    char tag = 0;
    iovec iov{&tag, 1};
    std::vector<char> control(CMSG_SPACE(sizeof(int) * kMaxFds), 0);
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.data();
    msg.msg_controllen = control.size();
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    std::vector<int> fds;
    if (n < 0) {
        ec = std::error_code(errno, std::system_category());
        return fds;
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fds.push_back(fd);
        }
    }
    const bool bad =
        n != 1 || tag != 'L' || (msg.msg_flags & MSG_CTRUNC) != 0 || fds.size() > max_fds || fds.empty();
    if (bad) {
        for (int fd : fds)
            ::close(fd);
        fds.clear();
        ec = std::make_error_code(n == 0 ? std::errc::connection_aborted : std::errc::bad_message);
        return fds;
    }
    ec.clear();
    return fds;
}

std::optional<PeerCredentials> peer_credentials(int sock) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return std::nullopt;
    return PeerCredentials{cred.pid, cred.uid};
}

std::optional<int> listening_tcp_port(int fd) {
    int value = 0;
    socklen_t len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &value, &len) != 0 || value != 1) return std::nullopt;
    len = sizeof value;
    if (::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &value, &len) != 0 || value != IPPROTO_TCP)
        return std::nullopt;
    sockaddr_storage addr{};
    socklen_t alen = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &alen) != 0) return std::nullopt;
    if (addr.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(addr).sin_port);
    if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(addr).sin6_port);
    return std::nullopt;
}

}  // namespace poolguard::net::handoff
