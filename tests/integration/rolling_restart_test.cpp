// Owns the integration test of the online restart: with so_reuseport a second pooler binds the same port, the
// first drains on SIGTERM, and pgbench running through the port the whole time loses no client.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

class RollingRestart : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        PoolerTest::SetUpTestSuite();
        if (!server_->ok()) return;
        RunResult init = server_->pgbench_init(1);
        if (init.exit_code != 0) std::fprintf(stderr, "pgbench -i failed:\n%s\n", init.output.c_str());
    }
};

// "No refused connection" is tested with pgbench -C: every transaction opens a new connection, so the port
// must accept and serve a login at every moment of the restart (before, while both run, and after the old
// one closed its listener); a connection refused, reset or cut during login aborts that pgbench client and
// makes pgbench exit non-zero. Clients that stay connected to the old process cannot move to the new one;
// they are closed at a transaction boundary (see Signals), and reconnect like pgbench -C does.
TEST_F(RollingRestart, PgbenchWithReconnectsLosesNoClientAcrossSoReuseportRestart) {
    const bool pgbouncer = PoolguardProcess::testing_pgbouncer();
    if (pgbouncer)
        GTEST_SKIP()
            << "pgbouncer 1.18 loses clients here: its safe shutdown (SIGINT = PAUSE + SHUTDOWN) keeps "
               "accepting on the shared port while paused, then drops those clients (all 8 pgbench "
               "-C clients aborted in a trial run)";
    ASSERT_EQ(pg().query_scalar("select count(*) from pgbench_branches"), "1") << "pgbench -i did not run";
    PoolerConfig cfg = base_config("transaction", 4);
    cfg.set("so_reuseport", 1);
    cfg.set("listen_port", free_tcp_port());
    cfg.set("admin_users", kApp2);
    const std::string port = *cfg.get("listen_port");
    auto current = std::make_unique<PoolguardProcess>(cfg);
    ASSERT_TRUE(current->start());

    PgbenchResult result;
    std::thread bench([&] {
        result = run_pgbench({"-h", "127.0.0.1", "-p", port, "-U", kApp, "-n", "-C", "-S", "-c", "8", "-j",
                              "2", "-T", "10", "db"},
                             60s);
    });
    std::this_thread::sleep_for(1500ms);
    // Two restarts in a row: the second hands over the listener it took from the first as well as its own.
    for (int restart = 1; restart <= 2; ++restart) {
        // The new version starts on the same port while the old one serves.
        auto next = std::make_unique<PoolguardProcess>(cfg);
        ASSERT_TRUE(next->start());
        EXPECT_TRUE(next->wait_for_log("listening on 127.0.0.1:" + port, 5s)) << next->log_contents();
        std::this_thread::sleep_for(1000ms);
        // pgbouncer 1.18's graceful shutdown is SIGINT (its SIGTERM is immediate).
        ASSERT_TRUE(current->send_signal(pgbouncer ? SIGINT : SIGTERM));
        std::optional<int> status = current->wait_exit(10s);
        EXPECT_TRUE(status.has_value()) << "the old pooler did not finish draining within 10 s";
        if (!pgbouncer && status) {
            EXPECT_EQ(*status, 0);
        }
        // The old one gave its listening sockets (its own, and from the second restart on the one it took
        // over) to the new one instead of closing them: connections queued on them are not reset.
        const std::string handed =
            "handed " + std::to_string(restart) + " listening socket(s) of port " + port;
        EXPECT_NE(current->log_contents().find(handed), std::string::npos)
            << "expected \"" << handed << "\" in the old pooler's log:\n"
            << current->log_contents();
        EXPECT_TRUE(next->wait_for_log("took over " + std::to_string(restart) + " listening socket(s)", 2s))
            << next->log_contents();
        current = std::move(next);
    }
    PoolguardProcess& new_pooler = *current;
    // The new one alone serves the port now; the old ones' server connections are gone.
    {
        PgConn c(new_pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        EXPECT_TRUE(Ok(c.exec("select 1")));
    }
    EXPECT_TRUE(eventually([&] { return pg().count_backends("usename = 'app'") <= 4; }, 5s))
        << pg().count_backends("usename = 'app'") << " backends: more than the new pooler's pool_size";
    bench.join();

    EXPECT_FALSE(result.timed_out) << result.describe();
    EXPECT_EQ(result.exit_code, 0) << result.describe();
    EXPECT_EQ(result.failed, 0) << result.describe();
    EXPECT_EQ(result.aborted_clients, 0) << result.describe();
    EXPECT_GT(result.processed, 0) << result.describe();
    // Both processes served pgbench's connections: the new one too, not only after the old one exited.
    PgConn admin(new_pooler.dsn(kApp2, kApp2Pass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    QueryResult totals = admin.exec("SHOW STATS_TOTALS");
    ASSERT_TRUE(totals.ok()) << totals.describe();
    long long new_xacts = 0;
    for (const auto& row : totals.rows) {
        if (row.at(0) == "db") new_xacts = std::atoll(row.at(1).c_str());
    }
    EXPECT_GT(new_xacts, 0) << "the new pooler served no transaction";
    std::fprintf(stderr, "rolling restart: pgbench -C processed=%lld failed=%lld, new pooler xacts=%lld\n",
                 result.processed, result.failed, new_xacts);
}

}  // namespace
}  // namespace itest
