// Owns the integration tests of the command line and config file (flags, bad values, logfile, Unix socket).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cctype>

#include "fixtures.h"

namespace itest {
namespace {

class ConfigCli : public PoolerTest {
  protected:
    void SetUp() override {
        PoolerTest::SetUp();
        if (PoolguardProcess::testing_pgbouncer() && skip_for_pgbouncer_) {
            GTEST_SKIP() << "poolguard command line only";
        }
    }
    bool skip_for_pgbouncer_ = false;
};

class ConfigCliPoolguardOnly : public ConfigCli {
  protected:
    ConfigCliPoolguardOnly() { skip_for_pgbouncer_ = true; }
};

// True when `text` contains N.N.N (digits).
bool has_version_number(const std::string& text) {
    for (size_t i = 0; i < text.size(); ++i) {
        size_t j = i;
        int groups = 0;
        while (true) {
            size_t start = j;
            while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j])))
                ++j;
            if (j == start) break;
            if (++groups == 3) return true;
            if (j >= text.size() || text[j] != '.') break;
            ++j;
        }
    }
    return false;
}

RunResult run_poolguard(const std::vector<std::string>& args) {
    SpawnOptions o;
    o.argv.push_back(PoolguardProcess::binary());
    for (const auto& a : args)
        o.argv.push_back(a);
    return run_command(o, 10s);
}

TEST_F(ConfigCliPoolguardOnly, VersionFlagPrintsVersion) {
    RunResult r = run_poolguard({"--version"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_TRUE(has_version_number(r.output)) << r.output;
}

TEST_F(ConfigCliPoolguardOnly, HelpFlagDescribesServeCommand) {
    RunResult r = run_poolguard({"--help"});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("serve"), std::string::npos) << r.output;
}

TEST_F(ConfigCliPoolguardOnly, MissingConfigFileExitsNonZero) {
    RunResult r = run_poolguard({"serve", "/nonexistent/dir/pooler.ini"});
    EXPECT_FALSE(r.timed_out);
    EXPECT_NE(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("/nonexistent/dir/pooler.ini"), std::string::npos) << r.output;
}

TEST_F(ConfigCliPoolguardOnly, UnknownParameterIsLoggedAndIgnored) {  // pgbouncer 1.18 refuses to start
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("no_such_parameter_xyz", "1");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    EXPECT_TRUE(pooler.wait_for_log("no_such_parameter_xyz", 3s)) << pooler.log_contents();
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_EQ(c.exec("select 1").value(), "1");
}

TEST_F(ConfigCliPoolguardOnly, InvalidValueExitsNamingFileLineAndParameter) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("max_client_conn", "lots");
    PoolguardProcess pooler(cfg);
    int line = pooler.line_of("max_client_conn");
    ASSERT_GT(line, 0);
    std::optional<int> status = pooler.run_until_exit(10s);
    ASSERT_TRUE(status.has_value()) << "an invalid value must stop the pooler";
    EXPECT_NE(*status, 0);
    std::string log = pooler.log_contents();
    EXPECT_NE(log.find("pooler.ini"), std::string::npos) << log;
    EXPECT_NE(log.find("max_client_conn"), std::string::npos) << log;
    bool names_line = log.find("pooler.ini:" + std::to_string(line)) != std::string::npos ||
                      log.find("line " + std::to_string(line)) != std::string::npos;
    EXPECT_TRUE(names_line) << "expected line " << line << " in:\n" << log;
}

TEST_F(ConfigCliPoolguardOnly, InvalidPoolModeExitsNonZero) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("pool_mode", "sometimes");
    PoolguardProcess pooler(cfg);
    std::optional<int> status = pooler.run_until_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_NE(*status, 0);
    EXPECT_NE(pooler.log_contents().find("pool_mode"), std::string::npos) << pooler.log_contents();
}

TEST_F(ConfigCli, UnixSocketAcceptsLibpqConnections) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    std::string socket_path = pooler.dir() + "/.s.PGSQL." + std::to_string(pooler.port());
    struct stat st {};
    ASSERT_EQ(stat(socket_path.c_str(), &st), 0) << socket_path << " missing";
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    PgConn c(pooler.unix_dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_EQ(c.exec("select 'via unix socket'").value(), "via unix socket");
}

TEST_F(ConfigCli, LogfileParameterReceivesLog) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("logfile", "pooler.log");  // relative: the pooler runs in its temp dir
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_TRUE(Ok(c.exec("select 1")));
    EXPECT_TRUE(eventually([&] { return !read_file(pooler.dir() + "/pooler.log").empty(); }, 3s))
        << "nothing written to logfile";
}

TEST_F(ConfigCli, IgnoredStartupParameterIsAccepted) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("ignore_startup_parameters", "extra_float_digits");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    LoginOutcome login = raw_login(raw, kApp, "db", "", 10s, {{"extra_float_digits", "2"}});
    EXPECT_TRUE(login.ready) << login.describe();
    RawQueryOutcome q = raw_query(raw, "select 1");
    EXPECT_TRUE(q.ready);
    EXPECT_TRUE(q.error.sqlstate.empty()) << q.error.message;
}

TEST_F(ConfigCli, UnknownDatabaseIsRejected) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    LoginOutcome login = raw_login(pooler.host(), pooler.port(), kApp, "no_such_db", "", 10s);
    EXPECT_FALSE(login.ready) << login.describe();
    EXPECT_FALSE(login.timed_out) << login.describe();
    EXPECT_FALSE(login.sqlstate.empty()) << login.describe();
}

}  // namespace
}  // namespace itest
