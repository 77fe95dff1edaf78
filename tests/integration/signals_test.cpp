// Owns the integration tests of signals as PgBouncer 1.23+/1.25 defines them: SIGHUP reload, SIGINT safe
// shutdown (transactions finish), SIGTERM super safe shutdown (connected clients finish), a second one
// immediate, SIGQUIT immediate, SIGUSR1/SIGUSR2 pause/resume, the admin console over the Unix socket during
// a shutdown.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <memory>
#include <thread>
#include <vector>

#include "fixtures.h"

namespace itest {
namespace {

class Signals : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        PoolerTest::SetUpTestSuite();
        if (!server_->ok()) return;
        server_->exec("CREATE TABLE sig_log(x int); GRANT ALL ON sig_log TO PUBLIC");
    }
    // Admin user app2 (for the console tests), over TCP and the Unix socket.
    static PoolerConfig admin_config() {
        PoolerConfig cfg = base_config("transaction", 2);
        cfg.set("admin_users", kApp2);
        return cfg;
    }
};

bool socket_file_exists(const PoolguardProcess& p) {
    struct stat st {};
    return ::stat((p.dir() + "/.s.PGSQL." + std::to_string(p.port())).c_str(), &st) == 0;
}

// Sends `sql` on every client at once, waits for all; returns false (with a message) on any failure.
::testing::AssertionResult run_on_all(std::vector<std::unique_ptr<PgConn>>& clients, const std::string& sql) {
    for (auto& c : clients) {
        if (!c->send(sql)) return ::testing::AssertionFailure() << "send failed: " << c->error_message();
    }
    for (size_t i = 0; i < clients.size(); ++i) {
        QueryResult r = clients[i]->wait(30s);
        if (!r.ok()) return ::testing::AssertionFailure() << "client " << i << ": " << r.describe();
    }
    return ::testing::AssertionSuccess();
}

TEST_F(Signals, SighupAppliesNewPoolSizeWithoutDroppingClients) {
    PoolerConfig cfg = base_config("transaction", 2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    std::vector<std::unique_ptr<PgConn>> clients;
    for (int i = 0; i < 6; ++i) {
        clients.push_back(std::make_unique<PgConn>(pooler.dsn(kApp)));
        ASSERT_TRUE(clients.back()->ok()) << clients.back()->connect_error();
    }
    {
        BackendSampler sampler(pg(), "usename = 'app'");
        ASSERT_TRUE(run_on_all(clients, "select pg_sleep(0.4)"));
        EXPECT_EQ(sampler.stop(), 2) << "before reload: default_pool_size=2";
    }
    cfg.set("default_pool_size", 4);
    ASSERT_TRUE(pooler.rewrite_config(cfg));
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    std::this_thread::sleep_for(700ms);
    ASSERT_TRUE(pooler.running()) << pooler.log_contents();
    {
        BackendSampler sampler(pg(), "usename = 'app'");
        ASSERT_TRUE(run_on_all(clients, "select pg_sleep(0.4)"))
            << "clients connected before the reload must keep working";
        EXPECT_EQ(sampler.stop(), 4) << "after reload: default_pool_size=4";
    }
}

// SIGINT (1.23+): safe shutdown, SHUTDOWN WAIT_FOR_SERVERS — the open transaction finishes, then exit 0.
TEST_F(Signals, SigintLetsInFlightTransactionFinishThenExitsZero) {
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE sig_log")));
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));
    ASSERT_TRUE(Ok(c.exec("insert into sig_log values (1)")));
    ASSERT_TRUE(pooler.send_signal(SIGINT));
    std::this_thread::sleep_for(1000ms);
    EXPECT_TRUE(pooler.running()) << "the pooler must wait for the open transaction";
    PgConn late(pooler.dsn(kApp), 3s);
    EXPECT_FALSE(late.ok() && late.exec("select 1", 3s).ok()) << "a new client was served after SIGINT";
    QueryResult more = c.exec("insert into sig_log values (2)", 10s);
    EXPECT_TRUE(more.ok()) << more.describe();
    QueryResult commit = c.exec("COMMIT", 10s);
    EXPECT_TRUE(commit.ok()) << commit.describe();
    // No need to disconnect: the server is released, so the pooler exits (closing this client).
    std::optional<int> status = pooler.wait_exit(5s);
    ASSERT_TRUE(status.has_value()) << "still running 5 s after the last transaction ended";
    EXPECT_EQ(*status, 0);
    EXPECT_EQ(pg().query_scalar("select count(*) from sig_log"), "2");
    EXPECT_FALSE(c.exec("select 1", 3s).ok()) << "the client outlived the pooler";
}

// SIGTERM (1.23+): super safe shutdown, SHUTDOWN WAIT_FOR_CLIENTS — a connected client keeps being served,
// new transactions included, and the pooler exits once it has disconnected.
TEST_F(Signals, SigtermKeepsServingConnectedClientsUntilTheyLeave) {
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE sig_log")));
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("select 1")));  // between transactions: holds no server
    ASSERT_TRUE(pooler.send_signal(SIGTERM));
    std::this_thread::sleep_for(1500ms);
    ASSERT_TRUE(pooler.running()) << "exited with a client still connected\n" << pooler.log_contents();
    PgConn late(pooler.dsn(kApp), 3s);
    EXPECT_FALSE(late.ok() && late.exec("select 1", 3s).ok()) << "a new client was served after SIGTERM";
    EXPECT_TRUE(Ok(c.exec("BEGIN")));
    EXPECT_TRUE(Ok(c.exec("insert into sig_log values (1)")));
    EXPECT_TRUE(Ok(c.exec("COMMIT")));
    std::this_thread::sleep_for(1000ms);
    EXPECT_TRUE(pooler.running()) << "exited while a client was still connected";
    EXPECT_TRUE(Ok(c.exec("select 2")));
    c.close();
    std::optional<int> status = pooler.wait_exit(5s);
    ASSERT_TRUE(status.has_value()) << "still running 5 s after the last client left";
    EXPECT_EQ(*status, 0);
    EXPECT_EQ(pg().query_scalar("select count(*) from sig_log"), "1");
}

TEST_F(Signals, SigtermStopsAcceptingNewClients) {
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));  // keeps the pooler alive while we try to connect
    ASSERT_TRUE(pooler.send_signal(SIGTERM));
    std::this_thread::sleep_for(300ms);
    PgConn late(pooler.dsn(kApp), 3s);
    EXPECT_FALSE(late.ok() && late.exec("select 1", 3s).ok()) << "a new client was served after SIGTERM";
    EXPECT_TRUE(Ok(c.exec("COMMIT", 10s)));
    c.close();
    std::optional<int> status = pooler.wait_exit(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 0);
}

// A second SIGTERM, or a SIGINT, during a shutdown: immediate shutdown, even with a transaction open.
TEST_F(Signals, SecondShutdownSignalExitsImmediately) {
    for (int second : {SIGTERM, SIGINT}) {
        SCOPED_TRACE(second == SIGTERM ? "SIGTERM twice" : "SIGTERM then SIGINT");
        PoolguardProcess pooler(base_config("transaction", 2));
        ASSERT_TRUE(pooler.start());
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        ASSERT_TRUE(Ok(c.exec("BEGIN")));
        ASSERT_TRUE(pooler.send_signal(SIGTERM));
        std::this_thread::sleep_for(1000ms);
        ASSERT_TRUE(pooler.running()) << "the first SIGTERM must wait for the connected client";
        EXPECT_TRUE(Ok(c.exec("select 1"))) << "the first SIGTERM ended the connected client";
        const auto start = Clock::now();
        ASSERT_TRUE(pooler.send_signal(second));
        std::optional<int> status = pooler.wait_exit(3s);
        ASSERT_TRUE(status.has_value()) << "a second shutdown signal did not stop it within 3 s";
        EXPECT_LT(elapsed_ms(start), 3000);
        EXPECT_EQ(*status, 0);
        EXPECT_FALSE(c.exec("select 1", 3s).ok());
    }
}

// SIGQUIT: immediate shutdown (SHUTDOWN), a clean one: exit 0 and the Unix socket file removed.
TEST_F(Signals, SigquitExitsImmediatelyAndCleansUp) {
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    ASSERT_TRUE(socket_file_exists(pooler));
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));
    ASSERT_TRUE(Ok(c.exec("select 1")));
    auto start = Clock::now();
    ASSERT_TRUE(pooler.send_signal(SIGQUIT));
    std::optional<int> status = pooler.wait_exit(3s);
    ASSERT_TRUE(status.has_value()) << "still running 3 s after SIGQUIT despite an open transaction";
    EXPECT_LT(elapsed_ms(start), 3000);
    EXPECT_EQ(*status, 0) << "killed by the signal instead of shutting down";
    EXPECT_FALSE(socket_file_exists(pooler)) << "the Unix socket file was left behind";
    QueryResult r = c.exec("select 1", 5s);
    EXPECT_FALSE(r.ok()) << r.describe();
    EXPECT_FALSE(r.timed_out) << r.describe();
}

TEST_F(Signals, SigtermWithoutClientsExitsZeroPromptly) {
    for (int sig : {SIGTERM, SIGINT}) {
        PoolguardProcess pooler(base_config("transaction", 2));
        ASSERT_TRUE(pooler.start());
        ASSERT_TRUE(pooler.send_signal(sig));
        std::optional<int> status = pooler.wait_exit(5s);
        ASSERT_TRUE(status.has_value()) << (sig == SIGTERM ? "SIGTERM" : "SIGINT");
        EXPECT_EQ(*status, 0);
    }
}

// SIGUSR1 = PAUSE, SIGUSR2 = RESUME (all databases).
TEST_F(Signals, Sigusr1PausesAndSigusr2Resumes) {
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("select 1")));
    ASSERT_TRUE(pooler.send_signal(SIGUSR1));
    std::this_thread::sleep_for(500ms);
    ASSERT_TRUE(pooler.running()) << "exited on SIGUSR1";
    ASSERT_TRUE(c.send("select 7"));
    std::this_thread::sleep_for(1000ms);
    EXPECT_FALSE(c.result_ready()) << "a query ran while paused by SIGUSR1";
    ASSERT_TRUE(pooler.send_signal(SIGUSR2));
    QueryResult r = c.wait(5s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), "7");
    EXPECT_TRUE(pooler.running());
}

// During either shutdown the Unix socket keeps accepting admin console logins (and only those), and an
// admin session already open keeps working; TCP refuses everything.
TEST_F(Signals, AdminConsoleOverUnixSocketWorksDuringShutdown) {
    for (int sig : {SIGINT, SIGTERM}) {
        SCOPED_TRACE(sig == SIGTERM ? "SIGTERM" : "SIGINT");
        PoolguardProcess pooler(admin_config());
        ASSERT_TRUE(pooler.start());
        PgConn admin(pooler.unix_dsn(kApp2, kApp2Pass, "pgbouncer"));
        ASSERT_TRUE(admin.ok()) << admin.connect_error();
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        ASSERT_TRUE(Ok(c.exec("BEGIN")));  // keeps either shutdown waiting
        ASSERT_TRUE(pooler.send_signal(sig));
        std::this_thread::sleep_for(500ms);
        QueryResult state = admin.exec("SHOW STATE");
        EXPECT_TRUE(state.ok()) << "the open admin session stopped working: " << state.describe();
        PgConn admin2(pooler.unix_dsn(kApp2, kApp2Pass, "pgbouncer"), 3s);
        ASSERT_TRUE(admin2.ok()) << "a new admin login over the Unix socket was refused: "
                                 << admin2.connect_error();
        QueryResult clients = admin2.exec("SHOW CLIENTS");
        EXPECT_TRUE(clients.ok()) << clients.describe();
        PgConn plain(pooler.unix_dsn(kApp, kAppPass), 3s);
        EXPECT_FALSE(plain.ok()) << "a non-admin client was served over the Unix socket during shutdown";
        EXPECT_NE(plain.connect_error().find("pooler is shutting down"), std::string::npos)
            << plain.connect_error();
        PgConn tcp_admin(pooler.dsn(kApp2, kApp2Pass, "pgbouncer"), 3s);
        EXPECT_FALSE(tcp_admin.ok()) << "TCP still accepted during shutdown";
        EXPECT_TRUE(Ok(c.exec("COMMIT")));
        if (sig == SIGTERM) c.close();
        // SIGINT does not wait for the admin consoles; SIGTERM does (they are clients too).
        if (sig == SIGTERM) {
            std::this_thread::sleep_for(700ms);
            EXPECT_TRUE(pooler.running()) << "SIGTERM must wait for the connected admin consoles too";
            admin.close();
            admin2.close();
        }
        std::optional<int> status = pooler.wait_exit(5s);
        ASSERT_TRUE(status.has_value()) << pooler.log_contents();
        EXPECT_EQ(*status, 0);
    }
}

}  // namespace
}  // namespace itest
