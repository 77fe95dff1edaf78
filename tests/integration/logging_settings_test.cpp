// Owns the integration tests of PgBouncer 1.25's logging settings (issue 13): syslog / syslog_ident /
// syslog_facility (lines reach a Unix datagram socket standing in for /dev/log, via POOLGUARD_SYSLOG_SOCKET)
// and log_stats (the "stats: ..." line every stats_period, none with log_stats = 0).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "fixtures.h"

namespace itest {
namespace {

class LoggingSettings : public PoolerTest {};

// A bound Unix datagram socket: what a syslog daemon's /dev/log is.
class FakeSyslog {
  public:
    explicit FakeSyslog(std::string path) : path_(std::move(path)) {
        ::unlink(path_.c_str());
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path_.c_str(), sizeof addr.sun_path - 1);
        bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        timeval tv{0, 200'000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~FakeSyslog() {
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    bool bound() const { return bound_; }
    // Datagrams until one contains `needle` or `timeout` passes; every datagram read is kept.
    bool wait_for(const std::string& needle, std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            char buf[4096];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) continue;
            received_.emplace_back(buf, static_cast<size_t>(n));
            if (received_.back().find(needle) != std::string::npos) return true;
        }
        return false;
    }
    const std::vector<std::string>& received() const { return received_; }
    std::string all() const {
        std::string out;
        for (const auto& r : received_)
            out += r + "\n";
        return out;
    }

  private:
    std::string path_;
    int fd_ = -1;
    bool bound_ = false;
    std::vector<std::string> received_;
};

TEST_F(LoggingSettings, SyslogGetsTheLinesWithIdentAndFacility) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP() << "PgBouncer uses syslog(3), fixed to /dev/log: nothing to redirect";
    auto cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    cfg.set("syslog", 1).set("syslog_ident", "pgtest13").set("syslog_facility", "local4");
    cfg.set("log_connections", 1);
    const std::string sock = "/tmp/pg-fake-syslog-" + std::to_string(::getpid());
    FakeSyslog syslog(sock);
    ASSERT_TRUE(syslog.bound());
    ::setenv("POOLGUARD_SYSLOG_SOCKET", sock.c_str(), 1);
    PoolguardProcess p(cfg);
    const bool started = p.start();
    ::unsetenv("POOLGUARD_SYSLOG_SOCKET");
    ASSERT_TRUE(started);
    PgConn c(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(c.exec("SELECT 1")));
    const std::string tag = " pgtest13[" + std::to_string(p.pid()) + "]: ";
    ASSERT_TRUE(syslog.wait_for(tag, 5s)) << syslog.all();
    const std::string pri = "<" + std::to_string(LOG_LOCAL4 | LOG_INFO) + ">";
    bool info_line = false;
    for (const auto& d : syslog.received())
        info_line = info_line || (d.starts_with(pri) && d.find(tag) != std::string::npos);
    EXPECT_TRUE(info_line) << syslog.all();
    // The stderr/logfile output keeps every line as well.
    EXPECT_NE(p.log_contents().find("login"), std::string::npos) << p.log_contents();

    // SET syslog_ident applies to the next line.
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(Ok(admin.exec("SET syslog_ident = 'pgtest13b'")));
    PgConn c2(p.dsn(kApp2, kApp2Pass));
    ASSERT_TRUE(Ok(c2.exec("SELECT 1")));
    EXPECT_TRUE(syslog.wait_for(" pgtest13b[", 5s)) << syslog.all();
}

TEST_F(LoggingSettings, SyslogOffSendsNothing) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "PgBouncer's syslog(3) cannot be redirected";
    auto cfg = base_config("transaction", 2);
    cfg.set("syslog", "0").set("log_connections", 1);
    const std::string sock = "/tmp/pg-fake-syslog-off-" + std::to_string(::getpid());
    FakeSyslog syslog(sock);
    ASSERT_TRUE(syslog.bound());
    ::setenv("POOLGUARD_SYSLOG_SOCKET", sock.c_str(), 1);
    PoolguardProcess p(cfg);
    const bool started = p.start();
    ::unsetenv("POOLGUARD_SYSLOG_SOCKET");
    ASSERT_TRUE(started);
    PgConn c(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(c.exec("SELECT 1")));
    EXPECT_FALSE(syslog.wait_for("[", 1500ms)) << syslog.all();
}

TEST_F(LoggingSettings, LogStatsLineEveryStatsPeriod) {
    auto cfg = base_config("transaction", 2);
    cfg.set("stats_period", 1).set("log_stats", 1);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn c(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(c.exec("SELECT 1")));
    ASSERT_TRUE(p.wait_for_log("stats: ", 5s)) << p.log_contents();
    const std::string log = p.log_contents();
    const auto at = log.find("stats: ");
    const std::string line = log.substr(at, log.find('\n', at) - at);
    for (const char* field :
         {" xacts/s, ", " queries/s, ", " client parses/s, ", " server parses/s, ", " binds/s, in ",
          " B/s, out ", " B/s, xact ", " us, query ", " us, wait ", " us"})
        EXPECT_NE(line.find(field), std::string::npos) << field << " in " << line;
}

TEST_F(LoggingSettings, LogStatsOffIsQuiet) {
    auto cfg = base_config("transaction", 2);
    cfg.set("stats_period", 1).set("log_stats", "0");
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn c(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(c.exec("SELECT 1")));
    EXPECT_FALSE(p.wait_for_log("stats: ", 2500ms)) << p.log_contents();
}

}  // namespace
}  // namespace itest
