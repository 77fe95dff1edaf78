// Owns the long `Load` tests: pgbench, 200 clients over 20 servers, no failed transaction or aborted client.
#include <gtest/gtest.h>

#include "fixtures.h"

namespace itest {
namespace {

class Load : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.max_connections = 60;
        start_server(o);
        if (!server_->ok()) return;
        RunResult init = server_->pgbench_init(2);
        if (init.exit_code != 0) std::fprintf(stderr, "pgbench -i failed:\n%s\n", init.output.c_str());
    }

    static PoolerConfig load_config() {
        PoolerConfig c = base_config("transaction", 20);
        c.set("max_client_conn", 250);
        c.set("query_wait_timeout", 120);
        return c;
    }

    static std::string seconds() { return env_or("POOLGUARD_IT_LOAD_SECONDS", "30"); }

    void run_load(const std::string& mode) {
        ASSERT_EQ(pg().query_scalar("select count(*) from pgbench_branches"), "2")
            << "pgbench -i did not run";
        PoolguardProcess pooler(load_config());
        ASSERT_TRUE(pooler.start());
        BackendSampler sampler(pg(), "usename = 'app'");
        PgbenchResult r = run_pgbench({"-h", pooler.host(), "-p", std::to_string(pooler.port()), "-U", kApp,
                                       "-n", mode, "-c", "200", "-j", "2", "-T", seconds(), "db"},
                                      std::chrono::seconds(std::stoi(seconds()) + 90));
        sampler.stop();
        long long max_servers = sampler.sustained_max();
        std::fprintf(stderr, "%s: tps=%.1f processed=%lld max server connections=%lld\n", mode.c_str(), r.tps,
                     r.processed, max_servers);
        EXPECT_FALSE(r.timed_out) << r.describe();
        EXPECT_EQ(r.exit_code, 0) << r.describe();
        EXPECT_EQ(r.failed, 0) << r.describe();
        EXPECT_EQ(r.aborted_clients, 0) << r.describe();
        EXPECT_GT(r.processed, 0) << r.describe();
        EXPECT_LE(max_servers, 20) << "default_pool_size=20 must cap the server connections";
        EXPECT_TRUE(pooler.running()) << "the pooler died under load";
    }
};

TEST_F(Load, SelectOnly200ClientsOver20ServersHasNoFailures) {
    run_load("-S");
}

TEST_F(Load, SimpleUpdate200ClientsOver20ServersHasNoFailures) {
    run_load("-N");
}

}  // namespace
}  // namespace itest
