// Owns the integration tests of running under systemd (issue 13): sd_notify's READY / RELOADING with
// MONOTONIC_USEC / STOPPING on a NOTIFY_SOCKET the test binds, and socket activation (TCP and Unix
// listeners passed by systemd-socket-activate), against real PostgreSQL.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <poll.h>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "fixtures.h"
#include "subprocess.h"

namespace itest {
namespace {

constexpr const char* kActivate = "/usr/bin/systemd-socket-activate";

// The service manager's end of NOTIFY_SOCKET: a Unix datagram socket in a fresh directory, every message
// received kept in order.
class NotifySocket {
  public:
    NotifySocket() {
        dir_ = make_temp_dir("pgit-notify");
        ::chmod(dir_.c_str(), 0777);  // PgBouncer runs as postgres when the tests run as root
        path_ = dir_ + "/notify.sock";
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
              ::chmod(path_.c_str(), 0777) == 0;
    }
    ~NotifySocket() {
        if (fd_ >= 0) ::close(fd_);
        remove_tree(dir_);
    }
    NotifySocket(const NotifySocket&) = delete;
    NotifySocket& operator=(const NotifySocket&) = delete;

    bool ok() const { return ok_; }
    std::string env() const { return "NOTIFY_SOCKET=" + path_; }

    // The next message (after those already returned) that has `line` as one of its lines.
    std::optional<std::string> wait_for(const std::string& line, std::chrono::milliseconds timeout) {
        return wait_until([&](const std::string& m) { return has_line(m, line); }, timeout);
    }
    // The next message whose STATUS= starts with `prefix`.
    std::optional<std::string> wait_for_status(const std::string& prefix, std::chrono::milliseconds timeout) {
        return wait_until([&](const std::string& m) { return field(m, "STATUS").starts_with(prefix); },
                          timeout);
    }
    std::optional<std::string> wait_until(const std::function<bool(const std::string&)>& wanted,
                                          std::chrono::milliseconds timeout) {
        const auto deadline = Clock::now() + timeout;
        while (true) {
            while (next_ < messages_.size()) {
                const std::string& m = messages_[next_++];
                if (wanted(m)) return m;
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n > 0) messages_.emplace_back(buf, static_cast<size_t>(n));
        }
    }
    // Every message so far, for failure messages.
    std::string seen() const {
        std::string s;
        for (const auto& m : messages_) {
            std::string one = m;
            for (char& c : one)
                if (c == '\n') c = '|';
            s += "  [" + one + "]\n";
        }
        return s.empty() ? "  (no notifications)\n" : s;
    }

    static bool has_line(const std::string& message, const std::string& line) {
        return ("\n" + message + "\n").find("\n" + line + "\n") != std::string::npos;
    }
    // The value of `KEY=` in a message, "" when absent.
    static std::string field(const std::string& message, const std::string& key) {
        const std::string text = "\n" + message + "\n";
        const auto at = text.find("\n" + key + "=");
        if (at == std::string::npos) return "";
        const auto start = at + key.size() + 2;
        return text.substr(start, text.find('\n', start) - start);
    }

  private:
    std::string dir_;
    std::string path_;
    int fd_ = -1;
    bool ok_ = false;
    std::vector<std::string> messages_;
    size_t next_ = 0;
};

unsigned long long monotonic_usec() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
           static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
}

class Systemd : public PoolerTest {
  protected:
    static bool poolguard() { return !PoolguardProcess::testing_pgbouncer(); }
    // Why the reference cannot take part, when it cannot: a PgBouncer built without --with-systemd
    // (build-pgbouncer's ./configure has no such flag) only warns about NOTIFY_SOCKET and ignores
    // LISTEN_FDS.
    static std::optional<std::string> no_systemd_reason() {
        if (poolguard()) return std::nullopt;
        const std::string pgb = PoolguardProcess::default_kind() == PoolerKind::kPgbouncer118
                                    ? std::string("/usr/sbin/pgbouncer")
                                    : PoolguardProcess::pgbouncer_binary();
        if (pgb.empty()) return PoolguardProcess::pgbouncer_unavailable_reason();
        auto r = run_command(SpawnOptions{{pgb, "--version"}}, 10s);
        if (r.output.find("systemd: yes") == std::string::npos)
            return pgb +
                   " was built without systemd support (./configure --with-systemd); set "
                   "POOLGUARD_PGBOUNCER to one built with it";
        return std::nullopt;
    }
    static std::string describe(const PoolguardProcess& p, const NotifySocket& n) {
        return "notifications:\n" + n.seen() + "----- log -----\n" + p.log_contents();
    }
};

// Type=notify / notify-reload as PgBouncer 1.25.2's pgbouncer.service needs: READY=1 once clients are
// served, RELOADING=1 + MONOTONIC_USEC then READY=1 around a reload (a failed one too), STOPPING=1.
TEST_F(Systemd, NotifiesReadyReloadingAndStopping) {
    if (auto why = no_systemd_reason()) GTEST_SKIP() << *why;
    NotifySocket notify;
    ASSERT_TRUE(notify.ok()) << std::strerror(errno);
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp2);
    cfg.set("stats_period", 1);
    PoolguardProcess pooler(cfg);
    pooler.add_env(notify.env());
    ASSERT_TRUE(pooler.start());
    auto ready = notify.wait_for("READY=1", 10s);
    ASSERT_TRUE(ready) << describe(pooler, notify);
    // READY=1 comes once the listeners are open and clients are served.
    PgConn client(pooler.dsn(kApp));
    ASSERT_TRUE(client.ok()) << client.connect_error();
    auto r = client.exec("select current_user");
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), kApp);
    if (poolguard()) {
        EXPECT_NE(NotifySocket::field(*ready, "STATUS").find("accepting connections on 127.0.0.1:"),
                  std::string::npos)
            << describe(pooler, notify);
    }

    // Every stats_period the stats line becomes STATUS= (systemctl status shows it).
    auto stats = notify.wait_for_status("stats: ", 5s);
    ASSERT_TRUE(stats) << describe(pooler, notify);
    EXPECT_TRUE(NotifySocket::field(*stats, "STATUS").ends_with(" \u03bcs")) << describe(pooler, notify);

    // SIGHUP (ExecReload=kill -HUP, or systemd itself under Type=notify-reload).
    const auto before = monotonic_usec();
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    auto reloading = notify.wait_for("RELOADING=1", 10s);
    const auto after = monotonic_usec();
    ASSERT_TRUE(reloading) << describe(pooler, notify);
    const std::string usec = NotifySocket::field(*reloading, "MONOTONIC_USEC");
    ASSERT_FALSE(usec.empty()) << describe(pooler, notify);
    EXPECT_GE(std::stoull(usec), before);
    EXPECT_LE(std::stoull(usec), after);
    ASSERT_TRUE(notify.wait_for("READY=1", 10s)) << describe(pooler, notify);

    // A failed reload: READY=1 as well (the old configuration serves on), and STATUS says so.
    PoolerConfig broken = cfg;
    broken.set("pool_mode", "no_such_mode");
    ASSERT_TRUE(pooler.rewrite_config(broken));
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    ASSERT_TRUE(notify.wait_for("RELOADING=1", 10s)) << describe(pooler, notify);
    auto after_failure = notify.wait_for("READY=1", 10s);
    ASSERT_TRUE(after_failure) << describe(pooler, notify);
    if (poolguard()) {
        EXPECT_NE(NotifySocket::field(*after_failure, "STATUS")
                      .find("RELOAD failed, the old configuration stays in force: "),
                  std::string::npos)
            << describe(pooler, notify);
    }
    EXPECT_TRUE(client.exec("select 1").ok());

    // The admin console's RELOAD notifies as SIGHUP does (PgBouncer 1.25.2 notifies on SIGHUP only).
    if (poolguard()) {
        ASSERT_TRUE(pooler.rewrite_config(cfg));
        PgConn admin(pooler.dsn(kApp2, kApp2Pass, "pgbouncer"));
        ASSERT_TRUE(admin.ok()) << admin.connect_error();
        ASSERT_TRUE(admin.exec("RELOAD").ok());
        ASSERT_TRUE(notify.wait_for("RELOADING=1", 10s)) << describe(pooler, notify);
        ASSERT_TRUE(notify.wait_for("READY=1", 10s)) << describe(pooler, notify);
    }

    // SIGTERM: STOPPING=1 at once, although the connected client keeps the process up until it leaves.
    ASSERT_TRUE(pooler.send_signal(SIGTERM));
    ASSERT_TRUE(notify.wait_for("STOPPING=1", 10s)) << describe(pooler, notify);
    EXPECT_TRUE(pooler.running());
    client.close();
    EXPECT_EQ(pooler.wait_exit(10s), std::optional<int>(0)) << pooler.log_contents();
}

// SIGINT (KillSignal=SIGINT in pgbouncer.service) and SIGQUIT say STOPPING=1 too.
TEST_F(Systemd, NotifiesStoppingOnSigintAndSigquit) {
    if (auto why = no_systemd_reason()) GTEST_SKIP() << *why;
    for (int sig : {SIGINT, SIGQUIT}) {
        SCOPED_TRACE(sig == SIGINT ? "SIGINT" : "SIGQUIT");
        if (sig == SIGQUIT && !poolguard()) continue;  // PgBouncer 1.25.2 exits at SIGQUIT without a word
        NotifySocket notify;
        ASSERT_TRUE(notify.ok());
        PoolguardProcess pooler(base_config("transaction", 2));
        pooler.add_env(notify.env());
        ASSERT_TRUE(pooler.start());
        ASSERT_TRUE(notify.wait_for("READY=1", 10s)) << describe(pooler, notify);
        ASSERT_TRUE(pooler.send_signal(sig));
        EXPECT_TRUE(notify.wait_for("STOPPING=1", 10s)) << describe(pooler, notify);
        EXPECT_EQ(pooler.wait_exit(10s), std::optional<int>(0)) << pooler.log_contents();
    }
}

// Without NOTIFY_SOCKET nothing is sent and nothing is said about it: the plain start of every other test.

// Socket activation over TCP: systemd-socket-activate binds the port (as pgbouncer.socket's ListenStream=6432
// would) and execs the pooler at the first connection, which the pooler then serves from the passed socket.
TEST_F(Systemd, SocketActivatedTcpListenerServesClients) {
    if (::access(kActivate, X_OK) != 0) GTEST_SKIP() << kActivate << " is missing (Debian package systemd)";
    if (auto why = no_systemd_reason()) GTEST_SKIP() << *why;
    NotifySocket notify;
    ASSERT_TRUE(notify.ok());
    const int port = free_tcp_port();
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("listen_port", port);  // listen_addr = 127.0.0.1 too: ignored (binding it would fail: in use)
    PoolguardProcess pooler(cfg);
    // systemd-socket-activate passes on only PATH, TERM, USER and HOME, and what -E names.
    pooler.set_launcher({kActivate, "-l", "127.0.0.1:" + std::to_string(port), "-E", notify.env(), "-E",
                         "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS"});
    ASSERT_TRUE(pooler.start());  // the activator listens; the pooler is not running yet
    PgConn client(pooler.dsn(kApp), 15s);
    ASSERT_TRUE(client.ok()) << client.connect_error() << "\n" << describe(pooler, notify);
    auto r = client.exec("select current_user, count(*) from pg_stat_activity where usename = current_user");
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(0, 0), kApp);
    EXPECT_EQ(r.value(0, 1), "1");
    auto ready = notify.wait_for("READY=1", 10s);
    ASSERT_TRUE(ready) << describe(pooler, notify);
    EXPECT_TRUE(pooler.wait_for_log("socket passed from service manager", 5s)) << pooler.log_contents();
    if (poolguard()) {
        EXPECT_NE(NotifySocket::field(ready.value_or(""), "STATUS").find("sockets from the service manager"),
                  std::string::npos)
            << describe(pooler, notify);
    }
    // Passed sockets replace the configured addresses altogether (as PgBouncer 1.25.2): no Unix socket in
    // unix_socket_dir either.
    struct stat st {};
    EXPECT_NE(::stat((pooler.dir() + "/.s.PGSQL." + std::to_string(port)).c_str(), &st), 0);
    PgConn second(pooler.dsn(kApp));
    ASSERT_TRUE(second.ok()) << second.connect_error();
    EXPECT_TRUE(second.exec("select 1").ok());
    client.close();
    second.close();
    ASSERT_TRUE(pooler.send_signal(SIGTERM));
    EXPECT_EQ(pooler.wait_exit(10s), std::optional<int>(0)) << pooler.log_contents();
}

// A Unix socket passed the same way (ListenStream=/run/postgresql/.s.PGSQL.6432): clients and the admin
// console's peer login are served on it, and its file stays systemd's: not chmodded to unix_socket_mode,
// not removed at exit.
TEST_F(Systemd, SocketActivatedUnixListenerServesClientsAndStaysSystemds) {
    if (::access(kActivate, X_OK) != 0) GTEST_SKIP() << kActivate << " is missing (Debian package systemd)";
    if (auto why = no_systemd_reason()) GTEST_SKIP() << *why;
    const int port = free_tcp_port();
    const std::string sock_dir = make_temp_dir("pgit-sdsock");
    if (PoolguardProcess::testing_pgbouncer() && running_as_root())
        if (auto pg_user = postgres_os_user())
            chown_tree(sock_dir, *pg_user);  // the activator runs as postgres
    const std::string sock = sock_dir + "/.s.PGSQL." + std::to_string(port);
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("listen_port", port);
    cfg.set("unix_socket_mode", "0700");
    PoolguardProcess pooler(cfg);
    pooler.set_launcher({kActivate, "-l", "127.0.0.1:" + std::to_string(port), "-l", sock, "-E",
                         "ASAN_OPTIONS", "-E", "UBSAN_OPTIONS"});
    ASSERT_TRUE(pooler.start());
    struct stat before {};
    ASSERT_EQ(::stat(sock.c_str(), &before), 0) << "the activator made no socket at " << sock;
    const std::string unix_dsn = "host=" + sock_dir + " port=" + std::to_string(port) + " connect_timeout=5";
    PgConn client(unix_dsn + " user=" + kApp + " dbname=db", 15s);
    ASSERT_TRUE(client.ok()) << client.connect_error() << "\n" << pooler.log_contents();
    auto r = client.exec("select current_user");
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), kApp);
    if (poolguard()) {
        // Peer login of the admin console (same OS user as poolguard), as on poolguard's own socket.
        PgConn admin(unix_dsn + " user=pgbouncer dbname=pgbouncer");
        ASSERT_TRUE(admin.ok()) << admin.connect_error() << "\n" << pooler.log_contents();
        auto fds = admin.exec("SHOW FDS");
        EXPECT_TRUE(fds.ok()) << fds.describe();
        EXPECT_TRUE(admin.exec("SHOW VERSION").ok());
    }
    struct stat after {};
    ASSERT_EQ(::stat(sock.c_str(), &after), 0);
    EXPECT_EQ(after.st_mode, before.st_mode) << "unix_socket_mode must not touch systemd's socket";
    EXPECT_EQ(after.st_ino, before.st_ino) << "the socket file must not be replaced";
    struct stat own {};
    EXPECT_NE(::stat((pooler.dir() + "/.s.PGSQL." + std::to_string(port)).c_str(), &own), 0)
        << "unix_socket_dir is ignored when sockets are passed";
    client.close();
    ASSERT_TRUE(pooler.send_signal(SIGTERM));
    EXPECT_EQ(pooler.wait_exit(10s), std::optional<int>(0)) << pooler.log_contents();
    EXPECT_EQ(::stat(sock.c_str(), &after), 0) << "the passed socket's file is systemd's to remove";
    remove_tree(sock_dir);
}

// A passed descriptor that is not a listening socket (a unit's Sockets= naming a FIFO, say) refuses the start
// with the descriptor named, instead of an accept loop failing on it. PgBouncer 1.25.2 takes it as it is.
TEST_F(Systemd, PassedDescriptorThatIsNoListeningSocketRefusesTheStart) {
    if (!poolguard()) GTEST_SKIP() << "PgBouncer 1.25.2 does not check what it is passed";
    PoolguardProcess pooler(base_config("transaction", 2));
    // The shell becomes poolguard (exec), so $$ is the LISTEN_PID poolguard sees; fd 3 is a plain file.
    pooler.set_launcher({"/bin/sh", "-c", "LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\" 3</dev/null"});
    EXPECT_EQ(pooler.run_until_exit(10s), std::optional<int>(1)) << pooler.log_contents();
    EXPECT_NE(
        pooler.log_contents().find("descriptor 3 passed by the service manager is not a listening TCP or "
                                   "Unix stream socket"),
        std::string::npos)
        << pooler.log_contents();
}

// deploy/systemd/poolguard.{service,socket}: `systemd-analyze verify` accepts them without a word, in a root
// holding the system's units, poolguard as /usr/bin/poolguard and /bin/kill (what ExecStart= and
// ExecReload= name).
TEST(SystemdUnits, SystemdAnalyzeVerifyAcceptsTheDeployUnits) {
    const std::string analyze = "/usr/bin/systemd-analyze";
    if (::access(analyze.c_str(), X_OK) != 0)
        GTEST_SKIP() << analyze << " is missing (Debian package systemd)";
    const std::string root = make_temp_dir("pgit-sdroot");
    const std::string units = std::string(POOLGUARD_SOURCE_DIR) + "/deploy/systemd";
    for (const char* dir : {"/usr/lib/systemd", "/usr/bin", "/bin", "/etc/systemd/system"})
        ASSERT_EQ(run_command(SpawnOptions{{"mkdir", "-p", root + dir}}, 10s).exit_code, 0);
    auto copy = [&](const std::string& from, const std::string& to) {
        auto r = run_command(SpawnOptions{{"cp", "-a", from, root + to}}, 60s);
        return r.exit_code == 0 ? ::testing::AssertionSuccess() : ::testing::AssertionFailure() << r.output;
    };
    ASSERT_TRUE(copy("/usr/lib/systemd/system", "/usr/lib/systemd/"));
    ASSERT_TRUE(copy(PoolguardProcess::binary(), "/usr/bin/poolguard"));
    ASSERT_TRUE(copy("/bin/kill", "/bin/kill"));
    ASSERT_TRUE(copy(units + "/poolguard.service", "/etc/systemd/system/"));
    ASSERT_TRUE(copy(units + "/poolguard.socket", "/etc/systemd/system/"));
    auto r = run_command(
        SpawnOptions{{analyze, "verify", "--root=" + root, "poolguard.service", "poolguard.socket"}}, 60s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "") << "warnings (unknown keys, bad values) are printed but do not fail verify";
    remove_tree(root);
}

}  // namespace
}  // namespace itest
