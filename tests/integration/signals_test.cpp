// Owns the integration tests of signals: SIGHUP reload, SIGTERM graceful and SIGINT immediate shutdown.
#include <gtest/gtest.h>
#include <signal.h>

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
};

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

TEST_F(Signals, SigtermLetsInFlightTransactionFinishThenExitsZero) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer 1.18's SIGTERM is immediate";
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE sig_log")));
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));
    ASSERT_TRUE(Ok(c.exec("insert into sig_log values (1)")));
    ASSERT_TRUE(pooler.send_signal(SIGTERM));
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(pooler.running()) << "the pooler must wait for the open transaction";
    QueryResult more = c.exec("insert into sig_log values (2)", 10s);
    EXPECT_TRUE(more.ok()) << more.describe();
    QueryResult commit = c.exec("COMMIT", 10s);
    EXPECT_TRUE(commit.ok()) << commit.describe();
    c.close();
    std::optional<int> status = pooler.wait_exit(10s);
    ASSERT_TRUE(status.has_value()) << "still running 10 s after the last transaction ended";
    EXPECT_EQ(*status, 0);
    EXPECT_EQ(pg().query_scalar("select count(*) from sig_log"), "2");
}

TEST_F(Signals, SigtermStopsAcceptingNewClients) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer 1.18's SIGTERM is immediate";
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

TEST_F(Signals, SigintExitsImmediately) {
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));
    ASSERT_TRUE(Ok(c.exec("select 1")));
    auto start = Clock::now();
    ASSERT_TRUE(pooler.send_signal(PoolguardProcess::testing_pgbouncer() ? SIGTERM : SIGINT));
    std::optional<int> status = pooler.wait_exit(3s);
    ASSERT_TRUE(status.has_value()) << "still running 3 s after SIGINT despite an open transaction";
    EXPECT_LT(elapsed_ms(start), 3000);
    QueryResult r = c.exec("select 1", 5s);
    EXPECT_FALSE(r.ok()) << r.describe();
    EXPECT_FALSE(r.timed_out) << r.describe();
}

TEST_F(Signals, SigtermWithoutClientsExitsZeroPromptly) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer 1.18 exits 1 on SIGTERM";
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    ASSERT_TRUE(pooler.send_signal(SIGTERM));
    std::optional<int> status = pooler.wait_exit(5s);
    ASSERT_TRUE(status.has_value());
    EXPECT_EQ(*status, 0);
}

}  // namespace
}  // namespace itest
