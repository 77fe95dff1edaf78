// Owns the integration tests of named prepared statements in transaction mode at scale: 100 clients over 10
// servers (libpq PQprepare/PQexecPrepared, and pgbench -M prepared), across servers closed and reopened by
// pg_terminate_backend and by the admin console's RECONNECT.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

class PreparedLoad : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        PoolerTest::SetUpTestSuite();
        if (!server_->ok()) return;
        RunResult init = server_->pgbench_init(1);
        if (init.exit_code != 0) std::fprintf(stderr, "pgbench -i failed:\n%s\n", init.output.c_str());
    }
    void SetUp() override {
        PoolerTest::SetUp();
        if (PoolguardProcess::testing_pgbouncer())
            GTEST_SKIP() << "pgbouncer 1.18 has no prepared statement support in transaction mode";
    }

    static PoolerConfig prepared_config() {
        PoolerConfig cfg = base_config("transaction", 10);
        cfg.set("admin_users", kApp2);
        cfg.set("max_prepared_statements", 100);
        return cfg;
    }

    static std::set<std::string> app_backend_pids() {
        std::string list = pg().query_scalar(
            "select coalesce(string_agg(pid::text, ','), '') from pg_stat_activity "
            "where usename = 'app' and backend_type = 'client backend'");
        std::set<std::string> pids;
        std::istringstream in(list);
        std::string pid;
        while (std::getline(in, pid, ','))
            if (!pid.empty()) pids.insert(pid);
        return pids;
    }

    static bool disjoint(const std::set<std::string>& a, const std::set<std::string>& b) {
        for (const auto& x : a)
            if (b.contains(x)) return false;
        return true;
    }
};

// Collects failures from many threads: the count and the first description.
struct Failures {
    std::atomic<int> count{0};
    std::mutex mutex;
    std::string first;
    void add(const std::string& what) {
        if (count.fetch_add(1) == 0) {
            std::lock_guard lock(mutex);
            first = what;
        }
    }
};

TEST_F(PreparedLoad, HundredClientsOverTenServersAcrossTerminateAndReconnect) {
    PoolguardProcess pooler(prepared_config());
    ASSERT_TRUE(pooler.start());
    constexpr int kClients = 100;
    std::barrier sync(kClients + 1);
    Failures failures;
    std::atomic<bool> reconnect_done{false};
    BackendSampler sampler(pg(), "usename = 'app'");

    auto run_statements = [&](PgConn& conn, int c, int iterations) {
        for (int i = 0; i < iterations; ++i) {
            QueryResult add = conn.exec_prepared("add", {std::to_string(i)});
            if (!add.ok())
                failures.add("add: " + add.describe());
            else if (add.value() != std::to_string(i + c))
                failures.add("add returned " + add.value() + " for " + std::to_string(i + c));
            QueryResult tag = conn.exec_prepared("tag", {"x"});
            if (!tag.ok())
                failures.add("tag: " + tag.describe());
            else if (tag.value() != "x" + std::to_string(c))
                failures.add("tag returned " + tag.value());
        }
    };
    std::vector<std::thread> threads;
    for (int c = 0; c < kClients; ++c) {
        threads.emplace_back([&, c] {
            PgConn conn(pooler.dsn(kApp), 20s);
            bool usable = conn.ok();
            if (!usable) failures.add("connect: " + conn.connect_error());
            if (usable) {
                QueryResult p1 = conn.prepare("add", "select $1::int + " + std::to_string(c), 1);
                QueryResult p2 = conn.prepare("tag", "select $1::text || '" + std::to_string(c) + "'", 1);
                if (!p1.ok()) failures.add("prepare add: " + p1.describe());
                if (!p2.ok()) failures.add("prepare tag: " + p2.describe());
                run_statements(conn, c, 5);
            }
            sync.arrive_and_wait();  // 1: everyone idle; the main thread kills every server
            sync.arrive_and_wait();  // 2: go on, on new servers; RECONNECT comes meanwhile
            if (usable) {
                // Keep going until the RECONNECT has been answered, then some more.
                int rounds = 0;
                while (!reconnect_done.load() && rounds < 200) {
                    run_statements(conn, c, 1);
                    ++rounds;
                }
                run_statements(conn, c, 3);
                // A statement prepared after all that works as well.
                QueryResult p3 = conn.prepare("late", "select $1::int * 3", 1);
                if (!p3.ok()) failures.add("prepare late: " + p3.describe());
                QueryResult late = conn.exec_prepared("late", {std::to_string(c)});
                if (!late.ok() || late.value() != std::to_string(3 * c))
                    failures.add("late: " + late.describe());
            }
        });
    }
    sync.arrive_and_wait();  // 1
    // A login started for a client that then got a released server may still be finishing: let it.
    EXPECT_TRUE(eventually([&] { return pg().count_backends("usename = 'app'") == 10; }, 5s))
        << "100 busy clients over default_pool_size 10";
    std::set<std::string> first_servers = app_backend_pids();
    EXPECT_TRUE(eventually(
        [&] {
            pg().exec("select pg_terminate_backend(pid) from pg_stat_activity where usename = 'app'");
            return pg().count_backends("usename = 'app'") == 0;
        },
        5s));
    sync.arrive_and_wait();  // 2
    std::this_thread::sleep_for(300ms);
    std::set<std::string> before_reconnect = app_backend_pids();
    {
        PgConn admin(pooler.dsn(kApp2, kApp2Pass, "pgbouncer"));
        ASSERT_TRUE(admin.ok()) << admin.connect_error();
        EXPECT_TRUE(Ok(admin.exec("RECONNECT db")));
    }
    std::this_thread::sleep_for(300ms);
    reconnect_done.store(true);
    for (auto& t : threads)
        t.join();
    sampler.stop();
    std::set<std::string> last_servers = app_backend_pids();

    EXPECT_EQ(failures.count.load(), 0) << failures.first;
    EXPECT_LE(sampler.sustained_max(), 10) << "default_pool_size 10 must cap the server connections";
    EXPECT_FALSE(before_reconnect.empty());
    EXPECT_TRUE(disjoint(first_servers, last_servers)) << "terminated backends are still listed";
    EXPECT_TRUE(disjoint(before_reconnect, last_servers)) << "RECONNECT did not replace every server";
}

TEST_F(PreparedLoad, PgbenchPreparedSelectHundredClientsAcrossReconnect) {
    ASSERT_EQ(pg().query_scalar("select count(*) from pgbench_branches"), "1") << "pgbench -i did not run";
    PoolguardProcess pooler(prepared_config());
    ASSERT_TRUE(pooler.start());
    BackendSampler sampler(pg(), "usename = 'app'");
    PgbenchResult result;
    std::thread bench([&] {
        result = run_pgbench({"-h", pooler.host(), "-p", std::to_string(pooler.port()), "-U", kApp, "-n",
                              "-M", "prepared", "-S", "-c", "100", "-j", "2", "-T", "4", "db"},
                             60s);
    });
    std::this_thread::sleep_for(1500ms);
    std::set<std::string> before_reconnect = app_backend_pids();
    {
        PgConn admin(pooler.dsn(kApp2, kApp2Pass, "pgbouncer"));
        EXPECT_TRUE(admin.ok()) << admin.connect_error();
        EXPECT_TRUE(Ok(admin.exec("RECONNECT db")));
    }
    std::this_thread::sleep_for(1000ms);
    std::set<std::string> after_reconnect = app_backend_pids();
    bench.join();
    sampler.stop();
    EXPECT_FALSE(result.timed_out) << result.describe();
    EXPECT_EQ(result.exit_code, 0) << result.describe();
    EXPECT_EQ(result.failed, 0) << result.describe();
    EXPECT_EQ(result.aborted_clients, 0) << result.describe();
    EXPECT_GT(result.processed, 0) << result.describe();
    EXPECT_LE(sampler.sustained_max(), 10) << "default_pool_size 10 must cap the server connections";
    EXPECT_EQ(before_reconnect.size(), 10u);
    EXPECT_TRUE(disjoint(before_reconnect, after_reconnect)) << "RECONNECT did not replace every server";
    std::fprintf(stderr,
                 "pgbench -M prepared -S -c 100 over 10 servers: tps=%.0f processed=%lld failed=%lld\n",
                 result.tps, result.processed, result.failed);
}

}  // namespace
}  // namespace itest
