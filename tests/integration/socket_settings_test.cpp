// Owns the integration tests of the socket settings of PgBouncer 1.25 (issue 13): tcp_keepalive, tcp_keepcnt,
// tcp_keepidle, tcp_keepintvl, tcp_user_timeout, tcp_socket_buffer on client and server sockets (read back
// with getsockopt on the pooler's own descriptors, taken with pidfd_getfd), unix_socket_mode and
// unix_socket_group.
#include <grp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <dirent.h>
#include <filesystem>

#include "fixtures.h"

namespace itest {
namespace {

class SocketSettings : public PoolerTest {};

struct TcpSockopts {
    int keepalive = -1, keepcnt = -1, keepidle = -1, keepintvl = -1, user_timeout = -1;
    int sndbuf = -1, rcvbuf = -1;  // as Linux reports them: twice what was set
};

int get_int(int fd, int level, int name) {
    int v = -1;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, level, name, &v, &len) != 0) return -1;
    return v;
}

int port_of(const sockaddr_storage& a) {
    if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
    if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
    return -1;
}

// The options of every TCP socket of process `pid` whose local port is `local_port` (its accepted client
// connections) or whose peer port is `peer_port` (its server connections).
struct PoolerSockets {
    std::vector<TcpSockopts> client_side, server_side;
    std::string error;
};

PoolerSockets read_pooler_sockets(pid_t pid, int local_port, int peer_port) {
    PoolerSockets out;
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    if (pidfd < 0) {
        out.error = std::string("pidfd_open: ") + std::strerror(errno);
        return out;
    }
    for (const auto& entry : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
        std::error_code ec;
        const auto target = std::filesystem::read_symlink(entry.path(), ec).string();
        if (ec || !target.starts_with("socket:")) continue;
        const int remote_fd = std::stoi(entry.path().filename().string());
        const int fd = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, remote_fd, 0));
        if (fd < 0) {
            out.error = std::string("pidfd_getfd: ") + std::strerror(errno);
            continue;
        }
        sockaddr_storage local{}, peer{};
        socklen_t llen = sizeof local, plen = sizeof peer;
        const bool tcp = ::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &llen) == 0 &&
                         (local.ss_family == AF_INET || local.ss_family == AF_INET6) &&
                         get_int(fd, SOL_SOCKET, SO_TYPE) == SOCK_STREAM &&
                         ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen) == 0;
        if (tcp) {
            TcpSockopts o{get_int(fd, SOL_SOCKET, SO_KEEPALIVE),      get_int(fd, IPPROTO_TCP, TCP_KEEPCNT),
                          get_int(fd, IPPROTO_TCP, TCP_KEEPIDLE),     get_int(fd, IPPROTO_TCP, TCP_KEEPINTVL),
                          get_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT), get_int(fd, SOL_SOCKET, SO_SNDBUF),
                          get_int(fd, SOL_SOCKET, SO_RCVBUF)};
            if (port_of(local) == local_port) out.client_side.push_back(o);
            if (port_of(peer) == peer_port) out.server_side.push_back(o);
        }
        ::close(fd);
    }
    ::close(pidfd);
    return out;
}

void expect_options(const std::vector<TcpSockopts>& sockets, const TcpSockopts& want, const char* side) {
    ASSERT_FALSE(sockets.empty()) << "no " << side << " socket found";
    for (const auto& o : sockets) {
        EXPECT_EQ(o.keepalive, want.keepalive) << side;
        EXPECT_EQ(o.keepcnt, want.keepcnt) << side;
        EXPECT_EQ(o.keepidle, want.keepidle) << side;
        EXPECT_EQ(o.keepintvl, want.keepintvl) << side;
        EXPECT_EQ(o.user_timeout, want.user_timeout) << side;
    }
}

TEST_F(SocketSettings, KeepaliveAndUserTimeoutOnClientAndServerSockets) {
    auto cfg = base_config("session", 2);
    cfg.set("admin_users", kApp);
    cfg.set("tcp_keepalive", 1).set("tcp_keepcnt", 4).set("tcp_keepidle", 33).set("tcp_keepintvl", 7);
    cfg.set("tcp_user_timeout", 12345).set("tcp_socket_buffer", 65536);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn c(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(c.ok()) << c.error_message();
    ASSERT_TRUE(Ok(c.exec("SELECT 1")));  // session mode: the server stays linked

    auto sockets = read_pooler_sockets(p.pid(), p.port(), pg().port());
    ASSERT_TRUE(sockets.error.empty()) << sockets.error;
    expect_options(sockets.client_side, {1, 4, 33, 7, 12345}, "client");
    expect_options(sockets.server_side, {1, 4, 33, 7, 12345}, "server");
    for (const auto* side : {&sockets.client_side, &sockets.server_side})
        for (const auto& o : *side) {
            EXPECT_EQ(o.sndbuf, 2 * 65536) << "tcp_socket_buffer (SO_SNDBUF; Linux reports double)";
            EXPECT_EQ(o.rcvbuf, 2 * 65536) << "tcp_socket_buffer (SO_RCVBUF; Linux reports double)";
        }

    // SET through the admin console applies to sockets opened from then on.
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(Ok(admin.exec("SET tcp_keepidle = 44")));
    ASSERT_TRUE(Ok(admin.exec("SET tcp_user_timeout = 0")));
    c.close();
    admin.close();
    PgConn c2(p.dsn(kApp2, kApp2Pass));  // another user: a new server connection
    ASSERT_TRUE(Ok(c2.exec("SELECT 1")));
    sockets = read_pooler_sockets(p.pid(), p.port(), pg().port());
    bool new_client_seen = false, new_server_seen = false;
    for (const auto& o : sockets.client_side)
        new_client_seen = new_client_seen || o.keepidle == 44;
    for (const auto& o : sockets.server_side)
        new_server_seen = new_server_seen || (o.keepidle == 44 && o.user_timeout == 0);
    EXPECT_TRUE(new_client_seen);
    EXPECT_TRUE(new_server_seen);
}

TEST_F(SocketSettings, KeepaliveOffLeavesTheKnobsAlone) {
    auto cfg = base_config("session", 2);
    cfg.set("tcp_keepalive", "0").set("tcp_keepidle", 33);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn c(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(c.exec("SELECT 1")));
    auto sockets = read_pooler_sockets(p.pid(), p.port(), pg().port());
    ASSERT_TRUE(sockets.error.empty()) << sockets.error;
    ASSERT_FALSE(sockets.client_side.empty());
    ASSERT_FALSE(sockets.server_side.empty());
    for (const auto& o : sockets.client_side) {
        EXPECT_EQ(o.keepalive, 0);
        EXPECT_NE(o.keepidle, 33);
    }
    for (const auto& o : sockets.server_side)
        EXPECT_EQ(o.keepalive, 0);
}

std::string unix_socket_path(const PoolguardProcess& p) {
    return p.dir() + "/.s.PGSQL." + std::to_string(p.port());
}

TEST_F(SocketSettings, UnixSocketModeAndGroup) {
    // postgres: PgBouncer runs as that user in these tests, and may only give the socket a group of its own.
    const struct group* gr = ::getgrnam("postgres");
    if (gr == nullptr) GTEST_SKIP() << "no group postgres on this machine";
    const gid_t gid = gr->gr_gid;
    auto cfg = base_config("transaction", 2);
    cfg.set("unix_socket_mode", "0770").set("unix_socket_group", "postgres");
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    struct stat st {};
    ASSERT_EQ(::stat(unix_socket_path(p).c_str(), &st), 0) << unix_socket_path(p);
    EXPECT_EQ(st.st_mode & 07777, 0770u);
    EXPECT_EQ(st.st_gid, gid);
    PgConn c(p.unix_dsn(kApp, kAppPass));
    EXPECT_TRUE(Ok(c.exec("SELECT 1")));
}

TEST_F(SocketSettings, UnknownUnixSocketGroupRefusesToStart) {
    auto cfg = base_config("transaction", 2);
    cfg.set("unix_socket_group", "no_such_group_pg13");
    PoolguardProcess p(cfg);
    auto status = p.run_until_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_NE(*status, 0);
    if (!PoolguardProcess::testing_pgbouncer()) {
        EXPECT_NE(p.log_contents().find("no_such_group_pg13"), std::string::npos) << p.log_contents();
    }
}

}  // namespace
}  // namespace itest
