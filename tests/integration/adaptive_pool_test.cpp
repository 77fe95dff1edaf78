// Owns the integration test of issue 6 part 4 against a real PostgreSQL: with adaptive_pool = on the pool's
// limit moves (grows under steady latency, follows the budget the database view leaves when outside
// connections come and go), and poolguard's server connections, counted in pg_stat_activity, never exceed
// that budget.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

// 20 connections, 3 reserved for superusers: 17 usable slots.
class AdaptivePool : public PoolerTest {
  protected:
    static constexpr int kUsable = 17;
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.max_connections = 20;
        o.superuser_reserved_connections = 3;
        start_server(o);
    }
};

struct AdaptiveView {
    int limit = -1, budget = -1, servers = -1;
    std::string source;
};

AdaptiveView show_adaptive(const PoolguardProcess& p) {
    AdaptiveView v;
    auto r = PgConn(p.dsn(kApp, kAppPass, "pgbouncer")).exec("SHOW ADAPTIVE");
    if (!r.ok()) return v;
    auto col = [&](const char* name) {
        return static_cast<size_t>(std::find(r.columns.begin(), r.columns.end(), name) - r.columns.begin());
    };
    for (const auto& row : r.rows) {
        if (row.empty() || row[0] != "db") continue;
        v.limit = std::stoi(row[col("limit")]);
        v.budget = std::stoi(row[col("budget")]);
        v.servers = std::stoi(row[col("servers")]);
        v.source = row[col("budget_source")];
    }
    return v;
}

TEST_F(AdaptivePool, LimitMovesWithinTheBudgetTheDatabaseViewLeaves) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only feature";
    const int http_port = free_tcp_port();
    auto cfg = base_config("transaction", 16);
    cfg.databases = {"db = " + pg().pooler_target("adaptive_pool=on")};
    cfg.set("admin_users", kApp);
    // Fast windows and steps so the test takes seconds; the defaults are documented in configuration.md.
    cfg.raw_pgbouncer_lines = {"[poolguard]",
                               "http_listen = 127.0.0.1:" + std::to_string(http_port),
                               "control_user = postgres",
                               "sample_interval = 0.2",
                               "respond = off",
                               "adaptive_window = 0.25",
                               "adaptive_window_samples = 5",
                               "adaptive_smoothing = 1.0",
                               "adaptive_queue_size = 2"};
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    const std::string outside_dsn = pg().dsn(kApp, kAppPass) + " application_name=outside";
    const std::string pooled = "usename = 'app' and application_name <> 'outside'";

    // Ten connections that are not poolguard's hold slots: the budget is what they leave.
    std::vector<PgConn> outside;
    for (int i = 0; i < 10; ++i) {
        outside.emplace_back(outside_dsn);
        ASSERT_TRUE(outside.back().ok()) << outside.back().connect_error();
    }

    // The first budget arrives before any load (until then the budget is pool_size, which the outsiders
    // would make the database refuse). A pool exists from its first client's login.
    PgConn first(p.dsn(kApp, kAppPass, "db"));
    ASSERT_TRUE(first.ok()) << first.connect_error();
    AdaptiveView v;
    ASSERT_TRUE(eventually(
        [&] {
            v = show_adaptive(p);
            return v.source == "dbview";
        },
        5s));
    EXPECT_LE(v.budget, kUsable - 10);

    // Sixteen clients loop a query whose time does not depend on concurrency (steady latency).
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, failed{0};
    std::vector<std::thread> clients;
    struct Joiner {  // the clients stop and are joined however the test ends
        std::atomic<bool>& stop;
        std::vector<std::thread>& threads;
        ~Joiner() {
            stop = true;
            for (auto& t : threads)
                if (t.joinable()) t.join();
        }
    } joiner{stop, clients};
    for (int i = 0; i < 16; ++i) {
        clients.emplace_back([&] {
            PgConn c(p.dsn(kApp, kAppPass, "db"));
            while (!stop.load() && c.ok()) {
                if (c.exec("SELECT pg_sleep(0.02)").ok())
                    ++ok;
                else
                    ++failed;
            }
        });
    }
    BackendSampler sampler(pg(), pooled);

    // 1. From min (1) the limit climbs to the budget, which is below pool_size because of the outsiders.
    ASSERT_TRUE(eventually(
        [&] {
            v = show_adaptive(p);
            return v.source == "dbview" && v.limit >= 2 && v.limit == v.budget;
        },
        8s))
        << "limit " << v.limit << " budget " << v.budget << " source " << v.source;
    const int first_budget = v.budget;
    EXPECT_LE(first_budget, kUsable - 10);
    std::this_thread::sleep_for(600ms);
    const long long held_phase1 = sampler.sustained_max();
    EXPECT_LE(held_phase1, kUsable - 10) << "poolguard held more server connections than the outsiders left";
    std::printf(
        "[adaptive] 10 outside connections: limit %d = budget %d (%s); pooled backends at most %lld\n",
        v.limit, v.budget, v.source.c_str(), held_phase1);

    // 2. The outsiders leave: the budget rises (usable slots minus the control connection and the test's
    //    own superuser session) and the limit follows until the pool holds all of it.
    outside.clear();
    ASSERT_TRUE(eventually(
        [&] {
            v = show_adaptive(p);
            return v.limit >= first_budget + 3 && v.limit == v.budget && v.servers == v.budget;
        },
        8s))
        << "limit " << v.limit << " budget " << v.budget << " servers " << v.servers;
    ASSERT_TRUE(eventually([&] { return pg().count_backends(pooled) > first_budget; }, 5s))
        << "servers " << show_adaptive(p).servers << " pooled backends " << pg().count_backends(pooled)
        << "\n"
        << p.log_contents();
    std::printf("[adaptive] outsiders gone: limit %d, budget %d, pooled backends %lld\n", v.limit, v.budget,
                pg().count_backends(pooled));

    // 3. Three superusers (they may use the reserved slots, so the full database still lets them in) take
    //    slots: the budget drops by as many and the busy pool gives servers back down to it.
    sampler.stop();
    const int grown_budget = v.budget;
    std::vector<PgConn> superusers;
    for (int i = 0; i < 3; ++i) {
        superusers.emplace_back(pg().admin_dsn() + " application_name=outside");
        ASSERT_TRUE(superusers.back().ok()) << superusers.back().connect_error();
    }
    ASSERT_TRUE(eventually(
        [&] {
            v = show_adaptive(p);
            return v.budget <= kUsable - 3 - 1 && v.budget < grown_budget &&
                   pg().count_backends(pooled) <= v.budget;
        },
        5s))
        << "budget " << v.budget << " (was " << grown_budget << ") pooled backends "
        << pg().count_backends(pooled);
    BackendSampler after(pg(), pooled);
    std::this_thread::sleep_for(800ms);
    EXPECT_LE(after.stop(), v.budget);
    std::printf("[adaptive] 3 superusers in: limit %d, budget %d (was %d), pooled backends %lld\n", v.limit,
                v.budget, grown_budget, pg().count_backends(pooled));

    const std::string metrics = http_get(http_port, "/metrics");
    EXPECT_NE(metrics.find("poolguard_pool_adaptive_limit{database=\"db\",user=\"app\"}"), std::string::npos)
        << metrics;
    const std::string incidents = http_get(http_port, "/api/v1/incidents");
    EXPECT_NE(incidents.find("adaptive_limit"), std::string::npos) << incidents;

    stop = true;
    for (auto& t : clients)
        t.join();
    clients.clear();
    EXPECT_GT(ok.load(), 100);
    EXPECT_EQ(failed.load(), 0) << "a moving limit must queue clients, not fail them";
}

}  // namespace
}  // namespace itest
