// Owns the integration tests of the process contract of PgBouncer 1.25: the pidfile, -q/--quiet, -d, -u, -V
// and `poolguard FILE.ini` as a shorthand for `poolguard serve FILE.ini`.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

class Process : public PoolerTest {};

bool pid_alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const auto paren = line.rfind(')');
    return paren != std::string::npos && line.size() > paren + 2 && line[paren + 2] != 'Z';
}

bool file_exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

pid_t pid_in(const std::string& path) {
    return static_cast<pid_t>(std::atol(read_file(path).c_str()));
}

TEST_F(Process, PidfileHoldsThePidWhileRunningAndIsRemovedAtExit) {
    for (int sig : {SIGINT, SIGTERM, SIGQUIT}) {
        SCOPED_TRACE(sig);
        PoolerConfig cfg = base_config("transaction", 2);
        PoolguardProcess pooler(cfg);
        ASSERT_TRUE(pooler.start());  // creates the directory; rewrite with the pidfile inside it
        ASSERT_TRUE(pooler.send_signal(SIGQUIT));
        ASSERT_TRUE(pooler.wait_exit(5s).has_value());
        const std::string pidfile = pooler.dir() + "/pooler.pid";
        cfg.set("pidfile", pidfile);
        ASSERT_TRUE(pooler.rewrite_config(cfg));
        ASSERT_TRUE(pooler.start());
        ASSERT_TRUE(eventually([&] { return file_exists(pidfile); }, 3s)) << "pidfile was never written";
        EXPECT_EQ(pid_in(pidfile), pooler.pid()) << read_file(pidfile);
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        ASSERT_TRUE(Ok(c.exec("select 1")));
        c.close();
        ASSERT_TRUE(pooler.send_signal(sig));
        std::optional<int> status = pooler.wait_exit(5s);
        ASSERT_TRUE(status.has_value());
        EXPECT_EQ(*status, 0);
        EXPECT_FALSE(file_exists(pidfile)) << "pidfile left behind after a clean exit";
    }
}

// -q / --quiet: serves, and writes nothing to stderr (log lines go to the logfile only).
TEST_F(Process, QuietFlagWritesNothingToStderr) {
    for (const char* flag : {"-q", "--quiet"}) {
        SCOPED_TRACE(flag);
        PoolerConfig cfg = base_config("transaction", 2);
        cfg.set("logfile", "pooler.log");
        PoolguardProcess pooler(cfg);
        pooler.set_flags({flag});
        ASSERT_TRUE(pooler.start());
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        QueryResult r = c.exec("select 42");
        ASSERT_TRUE(r.ok()) << r.describe();
        EXPECT_EQ(r.value(), "42");
        c.close();
        ASSERT_TRUE(pooler.send_signal(SIGINT));
        ASSERT_TRUE(pooler.wait_exit(5s).has_value());
        EXPECT_EQ(pooler.output_contents(), "") << "stdout/stderr under " << flag;
        EXPECT_NE(read_file(pooler.dir() + "/pooler.log").find("listening on"), std::string::npos)
            << "the logfile must still get the log";
    }
}

// Without -q the log goes to the logfile when one is set; stderr gets it when none is.
TEST_F(Process, QuietWithoutLogfileDropsTheLog) {
    PoolguardProcess pooler(base_config("transaction", 2));
    pooler.set_flags({"-q", "-v"});
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    c.close();
    ASSERT_TRUE(pooler.send_signal(SIGINT));
    ASSERT_TRUE(pooler.wait_exit(5s).has_value());
    EXPECT_EQ(pooler.output_contents(), "");
}

// -d: the command returns 0 once the daemon listens; the daemon's PID is in the pidfile; it serves; SIGINT
// ends it and removes the pidfile. Without pidfile, -d refuses to start.
TEST_F(Process, DaemonFlagDetachesAndWritesThePidfile) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "the daemon is not the harness's child";
    PoolerConfig cfg = base_config("transaction", 2);
    PoolguardProcess probe(cfg);
    probe.set_flags({"-d"});
    std::optional<int> refused = probe.run_until_exit(10s);
    ASSERT_TRUE(refused.has_value());
    EXPECT_NE(*refused, 0) << "-d without pidfile must refuse";
    EXPECT_NE(probe.output_contents().find("pidfile"), std::string::npos) << probe.output_contents();

    const std::string pidfile = probe.dir() + "/daemon.pid";
    cfg.set("pidfile", pidfile);
    cfg.set("logfile", probe.dir() + "/daemon.log");
    cfg.set("listen_port", free_tcp_port());
    PoolguardProcess pooler(cfg);
    pooler.set_flags({"-d"});
    std::optional<int> parent = pooler.run_until_exit(10s);
    ASSERT_TRUE(parent.has_value()) << "the foreground command did not return";
    ASSERT_EQ(*parent, 0) << pooler.output_contents() << read_file(probe.dir() + "/daemon.log");
    ASSERT_TRUE(file_exists(pidfile)) << "pidfile missing when -d returned";
    const pid_t daemon = pid_in(pidfile);
    ASSERT_GT(daemon, 0);
    ASSERT_TRUE(pid_alive(daemon));
    EXPECT_NE(daemon, pooler.pid());
    {
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << "the daemon does not serve: " << c.connect_error();
        EXPECT_TRUE(Ok(c.exec("select 1")));
    }
    ASSERT_EQ(::kill(daemon, SIGINT), 0);
    EXPECT_TRUE(eventually([&] { return !pid_alive(daemon); }, 5s)) << "daemon still running after SIGINT";
    if (pid_alive(daemon)) ::kill(daemon, SIGKILL);
    EXPECT_TRUE(eventually([&] { return !file_exists(pidfile); }, 2s)) << "pidfile left behind";
    EXPECT_EQ(pooler.output_contents(), "") << "the daemon wrote to the terminal";
}

// -u USER: runs as that OS user (needs root, as for PgBouncer).
TEST_F(Process, UserFlagSwitchesIdentity) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer runs as postgres already";
    const auto pg_user = postgres_os_user();
    if (!running_as_root() || !pg_user) GTEST_SKIP() << "needs root and the postgres OS user";
    PoolerConfig cfg = base_config("transaction", 2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());  // creates the directory, which the user must own
    ASSERT_TRUE(pooler.send_signal(SIGQUIT));
    ASSERT_TRUE(pooler.wait_exit(5s).has_value());
    chown_tree(pooler.dir(), *pg_user);
    pooler.set_flags({"-u", pg_user->name});
    ASSERT_TRUE(pooler.start());
    const std::string status = read_file("/proc/" + std::to_string(pooler.pid()) + "/status");
    EXPECT_NE(status.find("\nUid:\t" + std::to_string(pg_user->uid) + "\t"), std::string::npos) << status;
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_TRUE(Ok(c.exec("select 1")));

    PoolguardProcess bad(base_config("transaction", 2));
    bad.set_flags({"-u", "no_such_user_poolguard"});
    std::optional<int> st = bad.run_until_exit(10s);
    ASSERT_TRUE(st.has_value());
    EXPECT_NE(*st, 0);
    EXPECT_NE(bad.output_contents().find("no_such_user_poolguard"), std::string::npos)
        << bad.output_contents();
}

RunResult run_binary(const std::vector<std::string>& args) {
    SpawnOptions o;
    o.argv.push_back(PoolguardProcess::binary());
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    return run_command(o, 10s);
}

TEST_F(Process, VersionFlagAndShorthandCommandLine) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard's binary";
    for (const auto& args :
         std::vector<std::vector<std::string>>{{"serve", "-V"}, {"-V"}, {"serve", "--version"}}) {
        RunResult r = run_binary(args);
        EXPECT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find("PgBouncer 1.25"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("poolguard"), std::string::npos) << r.output;
    }
    // `poolguard -q FILE.ini` serves like `poolguard serve -q FILE.ini`.
    PoolerConfig cfg = base_config("transaction", 2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    ASSERT_TRUE(pooler.send_signal(SIGQUIT));
    ASSERT_TRUE(pooler.wait_exit(5s).has_value());
    SpawnOptions o;
    o.argv = {PoolguardProcess::binary(), "-q", pooler.config_path()};
    o.output_path = pooler.dir() + "/shorthand.out";
    std::string error;
    const pid_t pid = spawn(o, &error);
    ASSERT_GT(pid, 0) << error;
    const bool listening = eventually([&] { return port_listening(pooler.port()); }, 5s);
    if (listening) {
        PgConn c(pooler.dsn(kApp));
        EXPECT_TRUE(c.ok()) << c.connect_error();
        EXPECT_TRUE(Ok(c.exec("select 1")));
    }
    ::kill(pid, SIGINT);
    std::optional<int> st = wait_pid(pid, 5s);
    if (!st) terminate_pid(pid, 1s);
    EXPECT_TRUE(listening) << read_file(o.output_path);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(*st, 0);
    EXPECT_EQ(read_file(o.output_path), "");
}

}  // namespace
}  // namespace itest
