// Owns the integration tests of issue 6 parts 2 and 3 against a real PostgreSQL: priority classes under
// contention (a batch class saturating the pool with long transactions must not starve web traffic nor hold
// more than its max_share, checked in pg_stat_activity), and the per-database circuit breaker (opens when
// direct connections fill max_connections, fails new transactions fast, closes when they go).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

// A small server: 12 connections, 3 reserved for superusers, so 9 direct connections fill it.
class ClassesBreaker : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.max_connections = 12;
        o.superuser_reserved_connections = 3;
        start_server(o);
    }
};

// Finds `col` of the first row of `r` whose first `match_col` equals `match`.
std::string cell(const QueryResult& r, const std::string& col, size_t match_col, const std::string& match) {
    size_t c = std::find(r.columns.begin(), r.columns.end(), col) - r.columns.begin();
    for (const auto& row : r.rows)
        if (row.size() > std::max(c, match_col) && row[match_col] == match) return row[c];
    return {};
}

TEST_F(ClassesBreaker, BatchClassCannotStarveWebAndStaysWithinShare) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only feature";
    auto cfg = base_config("transaction", 6);
    cfg.set("admin_users", kApp);
    cfg.set("query_wait_timeout", 30);
    cfg.raw_pgbouncer_lines.push_back("[classes]");
    cfg.raw_pgbouncer_lines.push_back("batch = application_name=batch*, priority=10, max_share=50");
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());

    // 30 batch clients ("5 jobs x 6 connections") looping 300 ms transactions: 5x the pool.
    std::atomic<bool> stop{false};
    std::atomic<int> batch_done{0}, batch_failed{0};
    std::vector<std::thread> batch;
    for (int i = 0; i < 30; ++i) {
        batch.emplace_back([&, i] {
            PgConn c(p.dsn(kApp, kAppPass, "db", "application_name=batch-" + std::to_string(i)));
            while (!stop.load() && c.ok()) {
                auto r = c.exec("SELECT pg_sleep(0.3) /*batchjob*/");
                if (r.ok())
                    ++batch_done;
                else
                    ++batch_failed;
            }
        });
    }
    std::this_thread::sleep_for(1s);  // the batch class saturates its share, the rest queue
    BackendSampler sampler(pg(), "state = 'active' and query like '%/*batch' || 'job*/%'");
    std::vector<long long> web_ms;
    {
        PgConn web(p.dsn(kApp, kAppPass, "db", "application_name=web"));
        ASSERT_TRUE(web.ok()) << web.connect_error();
        const auto until = Clock::now() + 4s;
        while (Clock::now() < until) {
            auto r = web.exec("SELECT 1");
            ASSERT_TRUE(Ok(r));
            web_ms.push_back(r.elapsed_ms);
            std::this_thread::sleep_for(20ms);
        }
        auto classes = PgConn(p.dsn(kApp, kAppPass, "pgbouncer")).exec("SHOW CLASSES");
        ASSERT_TRUE(Ok(classes));
        EXPECT_EQ(cell(classes, "max_servers", 2, "batch"), "3");
        EXPECT_EQ(cell(classes, "priority", 2, "batch"), "10");
        EXPECT_NE(cell(classes, "cl_waiting", 2, "batch"), "0");  // the rest of the batch queues
        EXPECT_LE(std::stoi(cell(classes, "sv_active", 2, "batch")), 3);
    }
    const long long batch_max = sampler.stop();
    stop = true;
    for (auto& t : batch)
        t.join();

    std::sort(web_ms.begin(), web_ms.end());
    const long long p99 = web_ms[web_ms.size() * 99 / 100];
    std::printf(
        "[classes] web requests %zu p50 %lld ms p99 %lld ms max %lld ms; batch done %d failed %d; batch "
        "servers max %lld (sustained %lld) of cap 3\n",
        web_ms.size(), web_ms[web_ms.size() / 2], p99, web_ms.back(), batch_done.load(), batch_failed.load(),
        batch_max, sampler.sustained_max());
    // FIFO would put web behind ~27 queued 300 ms batch transactions on 6 servers (~1.3 s).
    EXPECT_LT(p99, 500);
    EXPECT_LE(sampler.sustained_max(), 3);  // max_share=50 of 6
    EXPECT_GT(batch_done.load(), 20);       // batch still progresses at its share
    EXPECT_EQ(batch_failed.load(), 0);
}

struct Attempt {
    bool ok = false;
    std::string sqlstate, error;
    long long ms = 0;
};

// Connects and runs SELECT 1 (a transaction-mode pool may refuse at login or at the query).
Attempt attempt(const std::string& dsn) {
    Attempt a;
    const auto start = Clock::now();
    PgConn c(dsn);
    if (!c.ok()) {
        a.error = c.connect_error();
    } else {
        auto r = c.exec("SELECT 1");
        a.ok = r.ok();
        a.sqlstate = r.sqlstate;
        a.error = r.error;
    }
    a.ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    return a;
}

std::string breaker_state(const PoolguardProcess& p) {
    auto r = PgConn(p.dsn(kApp, kAppPass, "pgbouncer")).exec("SHOW BREAKERS");
    return cell(r, "state", 0, "db");
}

TEST_F(ClassesBreaker, BreakerOpensWhenDatabaseIsFullAndClosesWhenItEmpties) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only feature";
    auto cfg = base_config("transaction", 4);
    cfg.set("admin_users", kApp);
    cfg.set("query_wait_timeout", 30);
    cfg.raw_pgbouncer_lines.push_back("[poolguard]");
    cfg.raw_pgbouncer_lines.push_back("breaker_open_seconds = 2");
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());

    // Fill max_connections with direct connections from outside the pooler.
    std::vector<PgConn> outside;
    for (int i = 0; i < 20; ++i) {
        PgConn c(pg().dsn(kApp, kAppPass), 5s);
        if (!c.ok()) break;
        outside.push_back(std::move(c));
    }
    ASSERT_GE(outside.size(), 5u);

    const auto t_fill = Clock::now();
    auto first = attempt(p.dsn(kApp, kAppPass, "db"));
    EXPECT_FALSE(first.ok);
    ASSERT_TRUE(eventually([&] { return breaker_state(p) == "open"; }, 5s));
    const auto open_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t_fill).count();

    // Past server_login_retry (1 s) the breaker, not the last login error, answers: at once, 53300.
    std::this_thread::sleep_for(1100ms);
    if (breaker_state(p) == "open") {
        auto fast = attempt(p.dsn(kApp, kAppPass, "db"));
        EXPECT_FALSE(fast.ok);
        EXPECT_LT(fast.ms, 1000);
        EXPECT_NE(fast.error.find("exhausted"), std::string::npos) << fast.error;
        if (!fast.sqlstate.empty()) {
            EXPECT_EQ(fast.sqlstate, "53300");
        }
        std::printf("[breaker] refused in %lld ms: %s\n", fast.ms, fast.error.c_str());
    }
    auto metrics_admin = PgConn(p.dsn(kApp, kAppPass, "pgbouncer")).exec("SHOW BREAKERS");
    EXPECT_NE(cell(metrics_admin, "reason", 0, "db").find("53300"), std::string::npos);

    // The outside connections go: a half-open probe closes the breaker.
    outside.clear();
    const auto t_free = Clock::now();
    ASSERT_TRUE(eventually([&] { return breaker_state(p) == "closed"; }, 10s));
    const auto close_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t_free).count();
    auto after = attempt(p.dsn(kApp, kAppPass, "db"));
    EXPECT_TRUE(after.ok) << after.error;
    std::printf(
        "[breaker] opened %lld ms after the database filled; closed %lld ms after it emptied "
        "(breaker_open_seconds 2)\n",
        static_cast<long long>(open_ms), static_cast<long long>(close_ms));
}

}  // namespace
}  // namespace itest
