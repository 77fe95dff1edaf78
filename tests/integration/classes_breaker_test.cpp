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

struct Contention {
    long long web_p50 = 0, web_p99 = 0, web_max = 0;
    size_t web_requests = 0;
    int batch_done = 0, batch_failed = 0;
    long long batch_servers = 0;  // highest count of batch transactions active in two consecutive samples
    QueryResult show_classes;
    std::string metrics;  // /metrics during the load, when an HTTP port is given
};

// 30 batch clients ("5 jobs x 6 connections") loop 300 ms transactions (5x a pool of 6) while one web
// client runs SELECT 1 every 20 ms for 4 s.
Contention run_contention(TempPostgres& pg, const PoolguardProcess& p, int http_port = 0) {
    Contention out;
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
    std::this_thread::sleep_for(1s);  // the batch saturates the pool (or its share), the rest queue
    BackendSampler sampler(pg, "state = 'active' and query like '%/*batch' || 'job*/%'");
    std::vector<long long> web_ms;
    {
        PgConn web(p.dsn(kApp, kAppPass, "db", "application_name=web"));
        const auto until = Clock::now() + 4s;
        while (web.ok() && Clock::now() < until) {
            auto r = web.exec("SELECT 1");
            web_ms.push_back(r.ok() ? r.elapsed_ms : 1'000'000);
            std::this_thread::sleep_for(20ms);
        }
        out.show_classes = PgConn(p.dsn(kApp, kAppPass, "pgbouncer")).exec("SHOW CLASSES");
        if (http_port > 0) out.metrics = http_get(http_port, "/metrics");
    }
    sampler.stop();
    stop = true;
    for (auto& t : batch)
        t.join();
    out.batch_servers = sampler.sustained_max();
    out.batch_done = batch_done.load();
    out.batch_failed = batch_failed.load();
    if (web_ms.empty()) return out;
    std::sort(web_ms.begin(), web_ms.end());
    out.web_requests = web_ms.size();
    out.web_p50 = web_ms[web_ms.size() / 2];
    out.web_p99 = web_ms[web_ms.size() * 99 / 100];
    out.web_max = web_ms.back();
    return out;
}

void print(const char* label, const Contention& c) {
    std::printf(
        "[%s] web requests %zu p50 %lld ms p99 %lld ms max %lld ms; batch transactions %d (failed %d); "
        "batch servers at once (sustained) %lld\n",
        label, c.web_requests, c.web_p50, c.web_p99, c.web_max, c.batch_done, c.batch_failed,
        c.batch_servers);
}

TEST_F(ClassesBreaker, BatchClassCannotStarveWebAndStaysWithinShare) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only feature";
    auto cfg = base_config("transaction", 6);
    cfg.set("admin_users", kApp);
    cfg.set("query_wait_timeout", 30);
    cfg.raw_pgbouncer_lines.push_back("[classes]");
    cfg.raw_pgbouncer_lines.push_back("batch = application_name=batch*, priority=10, max_share=50");
    const int http_port = free_tcp_port();
    cfg.raw_pgbouncer_lines.push_back("[poolguard]");
    cfg.raw_pgbouncer_lines.push_back("http_listen = 127.0.0.1:" + std::to_string(http_port));
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());

    const Contention c = run_contention(pg(), p, http_port);
    print("classes", c);
    ASSERT_TRUE(Ok(c.show_classes));
    EXPECT_EQ(cell(c.show_classes, "max_servers", 2, "batch"), "3");
    EXPECT_EQ(cell(c.show_classes, "priority", 2, "batch"), "10");
    EXPECT_NE(cell(c.show_classes, "cl_waiting", 2, "batch"), "0");  // the rest of the batch queues
    EXPECT_LE(std::stoi("0" + cell(c.show_classes, "sv_active", 2, "batch")), 3);
    EXPECT_NE(
        c.metrics.find("poolguard_class_server_connections{database=\"db\",user=\"app\",class=\"batch\"} 3"),
        std::string::npos)
        << c.metrics;
    EXPECT_NE(c.metrics.find("poolguard_class_waiting_clients{database=\"db\",user=\"app\",class=\"batch\"}"),
              std::string::npos);
    EXPECT_NE(c.metrics.find("poolguard_class_max_servers{database=\"db\",user=\"app\",class=\"batch\"} 3"),
              std::string::npos);
    ASSERT_GT(c.web_requests, 20u);
    // Without classes web waits behind ~24 queued 300 ms batch transactions on 6 servers (~1.2 s; the
    // baseline test below measures it).
    EXPECT_LT(c.web_p99, 500);
    EXPECT_LE(c.batch_servers, 3);  // max_share=50 of pool_size 6
    EXPECT_GT(c.batch_done, 20);    // the batch still progresses at its share
    EXPECT_EQ(c.batch_failed, 0);
}

// The same load without [classes]: the FIFO makes web wait behind the batch (shows the test discriminates).
TEST_F(ClassesBreaker, WithoutClassesBatchStarvesWeb) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only feature";
    auto cfg = base_config("transaction", 6);
    cfg.set("admin_users", kApp);
    cfg.set("query_wait_timeout", 30);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    const Contention c = run_contention(pg(), p);
    print("fifo", c);
    EXPECT_GT(c.web_p50, 500);
    EXPECT_GT(c.batch_servers, 3);
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

// A client queued past breaker_wait_bound opens the breaker: it and every new client that would wait get
// 53300 at once instead of waiting query_wait_timeout (30 s); metrics and the journal show it.
TEST_F(ClassesBreaker, LongWaitOpensBreakerAndQueuedClientsFailFast) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only feature";
    const int http_port = free_tcp_port();
    auto cfg = base_config("transaction", 1);
    cfg.set("admin_users", kApp);
    cfg.set("query_wait_timeout", 30);
    cfg.raw_pgbouncer_lines = {"[poolguard]", "http_listen = 127.0.0.1:" + std::to_string(http_port),
                               "sample_interval = 1", "breaker_wait_bound = 1", "breaker_open_seconds = 3"};
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    auto get = [&](const char* path) { return http_get(http_port, path); };

    PgConn holder(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(holder.exec("BEGIN")));
    ASSERT_TRUE(Ok(holder.exec("SELECT 1")));  // holds the only server
    PgConn waiter(p.dsn(kApp, kAppPass));
    auto r = waiter.exec("SELECT 1");
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.sqlstate, "53300");
    EXPECT_NE(r.error.find("circuit breaker open"), std::string::npos) << r.error;
    EXPECT_GE(r.elapsed_ms, 900);
    EXPECT_LT(r.elapsed_ms, 2500);
    std::printf(
        "[breaker] queued client refused after %lld ms (breaker_wait_bound 1 s, query_wait_timeout 30 s)\n",
        r.elapsed_ms);

    PgConn other(p.dsn(kApp, kAppPass));
    auto fast = other.exec("SELECT 1");
    EXPECT_FALSE(fast.ok());
    EXPECT_LT(fast.elapsed_ms, 1000);
    EXPECT_TRUE(eventually(
        [&] {
            return get("/metrics").find("poolguard_breaker_state{database=\"db\"} 2") != std::string::npos;
        },
        5s));

    ASSERT_TRUE(Ok(holder.exec("COMMIT")));
    // After breaker_open_seconds it is half-open; the next client is served and closes it.
    ASSERT_TRUE(eventually([&] { return breaker_state(p) == "half-open"; }, 6s));
    PgConn again(p.dsn(kApp, kAppPass));  // a refused client is disconnected, as after query_wait_timeout
    EXPECT_TRUE(Ok(again.exec("SELECT 1")));
    EXPECT_EQ(breaker_state(p), "closed");
    EXPECT_TRUE(
        eventually([&] { return get("/api/v1/incidents").find("circuit_breaker") != std::string::npos; }, 5s))
        << get("/api/v1/incidents");
}

// query_wait_timeout refuses the lowest priority first: both servers are busy for 3.2 s; a web client queues
// first, three batch clients after it. When web's 2 s are up the newest batch client is refused in its place
// and web waits on, is served when a server frees, and the other batch clients time out themselves.
TEST_F(ClassesBreaker, TimedOutWaitsRefuseTheLowestPriorityFirst) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only feature";
    auto cfg = base_config("transaction", 2);
    cfg.set("query_wait_timeout", 2);
    cfg.raw_pgbouncer_lines = {"[classes]", "web = application_name=web*, priority=0",
                               "batch = application_name=batch*, priority=10"};
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    std::vector<std::thread> threads;
    for (int i = 0; i < 2; ++i)
        threads.emplace_back([&] {
            PgConn hog(p.dsn(kApp, kAppPass, "db", "application_name=web-hog"));
            EXPECT_TRUE(Ok(hog.exec("SELECT pg_sleep(3.2)")));
        });
    std::this_thread::sleep_for(300ms);  // the hogs hold both servers
    QueryResult web_result;
    threads.emplace_back([&] {
        PgConn web(p.dsn(kApp, kAppPass, "db", "application_name=web"));
        web_result = web.exec("SELECT 1");
    });
    std::this_thread::sleep_for(700ms);
    std::vector<QueryResult> batch_results(3);
    for (int i = 0; i < 3; ++i)
        threads.emplace_back([&, i] {
            PgConn b(p.dsn(kApp, kAppPass, "db", "application_name=batch-" + std::to_string(i)));
            batch_results[i] = b.exec("SELECT 1");
        });
    for (auto& t : threads)
        t.join();
    EXPECT_TRUE(web_result.ok()) << web_result.error;
    EXPECT_GE(web_result.elapsed_ms, 2000) << "web waited past its query_wait_timeout";
    std::vector<long long> batch_ms;
    for (const auto& r : batch_results) {
        EXPECT_FALSE(r.ok());
        EXPECT_EQ(r.sqlstate, "53300") << r.error;
        EXPECT_NE(r.error.find("query_wait_timeout"), std::string::npos) << r.error;
        batch_ms.push_back(r.elapsed_ms);
    }
    std::sort(batch_ms.begin(), batch_ms.end());
    EXPECT_LT(batch_ms[0], 1800) << "one batch client refused when web's wait was up, before its own";
    std::printf(
        "[classes] web served after %lld ms (query_wait_timeout 2 s); batch refused after %lld, %lld, "
        "%lld ms\n",
        web_result.elapsed_ms, batch_ms[0], batch_ms[1], batch_ms[2]);
}

// A bad [classes] line stops poolguard at start, naming the file, the line and the parameter.
TEST_F(ClassesBreaker, BadClassLineRefusesToStart) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only feature";
    auto cfg = base_config("transaction", 2);
    cfg.raw_pgbouncer_lines = {"[classes]", "batch = application_name=batch*, max_share=150"};
    PoolguardProcess p(cfg);
    std::optional<int> status = p.run_until_exit(10s);
    ASSERT_TRUE(status.has_value()) << "a bad class line must stop the pooler";
    EXPECT_NE(*status, 0);
    const std::string log = p.log_contents();
    const std::string ini = read_file(p.config_path());
    // The class line is the file's last line.
    const int line =
        static_cast<int>(std::count(ini.begin(), ini.end(), '\n')) - (ini.ends_with('\n') ? 0 : -1);
    EXPECT_NE(
        log.find("pooler.ini:" + std::to_string(line) + ": [classes] invalid value '150' for max_share"),
        std::string::npos)
        << "line " << line << ":\n"
        << log;
}

}  // namespace
}  // namespace itest
