// Owns the network fault tests (issue 15 item 6): a stall, a blackhole and resets between poolguard and
// PostgreSQL through an in-test TCP relay, under load; 0 lost acknowledged commits, 0 hung clients, bounded
// failures and recovery.
//
// Expected behaviour (docs/configuration.md, "Network faults"): poolguard cannot tell a stalled network from
// a slow query, so what bounds a stall is configuration — `query_timeout` ends a query without an answer (the
// server connection is closed, the client gets an error), `server_connect_timeout` ends a server login
// without an answer, `query_wait_timeout` ends a client's wait for a server. With those set no client waits
// longer than their sum; a stall shorter than `query_timeout` costs latency only. Without `query_timeout`, a
// client whose query is in flight waits as long as the network stalls (as with PgBouncer), unless TCP
// keepalive / `tcp_user_timeout` ends the connection.
#include <gtest/gtest.h>

#include <thread>

#include "fault_load.h"
#include "fixtures.h"
#include "tcp_relay.h"

namespace itest {
namespace {

constexpr int kPool = 4;
constexpr int kClients = 10;
constexpr int kQueryTimeoutS = 2;
constexpr int kConnectTimeoutS = 2;
constexpr int kQueryWaitTimeoutS = 8;

class FaultNet : public PoolerTest {
  protected:
    void SetUp() override {
        PoolerTest::SetUp();
        ASSERT_TRUE(FaultLoad::create_table(pg()));
        relay_ = std::make_unique<TcpRelay>(pg().host(), pg().port());
        ASSERT_TRUE(relay_->ok());
    }
    void TearDown() override { relay_.reset(); }

    PoolerConfig net_config() {
        PoolerConfig c = base_config("transaction", kPool);
        c.database("db", "host=127.0.0.1 port=" + std::to_string(relay_->port()) + " dbname=postgres");
        c.set("query_timeout", kQueryTimeoutS);
        c.set("server_connect_timeout", kConnectTimeoutS);
        c.set("query_wait_timeout", kQueryWaitTimeoutS);
        return c;
    }

    struct Run {
        std::unique_ptr<FaultLoad> load;
        Clock::time_point healed;
    };

    // 1 s of load, `fault` (returns when the network is healed), `after` more of load; stopped and checked
    // for lost commits and hung clients.
    void run(const std::function<void()>& fault, Run& out, std::chrono::milliseconds after = 2000ms) {
        PoolguardProcess pooler(net_config());
        ASSERT_TRUE(pooler.start());
        FaultLoadOptions o;
        o.dsn = pooler.dsn(kApp);
        o.clients = kClients;
        out.load = std::make_unique<FaultLoad>(o);
        out.load->start();
        std::this_thread::sleep_for(1000ms);
        EXPECT_GT(out.load->committed(), 0) << out.load->summary();
        fault();
        out.healed = Clock::now();
        std::this_thread::sleep_for(after);
        out.load->stop();
        const std::string summary = out.load->summary();
        std::vector<long long> lost = out.load->lost_commits(pg());
        EXPECT_TRUE(lost.empty()) << lost.size() << " acknowledged commits missing, first id "
                                  << lost.front();
        EXPECT_EQ(out.load->hung(), 0) << summary;
        EXPECT_TRUE(pooler.running()) << pooler.log_contents();
        std::fprintf(stderr, "fault-net: %s; longest request %lld ms, first commit after heal %lld ms\n",
                     summary.c_str(), out.load->max_request_ms(),
                     out.load->first_commit_after(out.healed).value_or(-1));
    }

    std::unique_ptr<TcpRelay> relay_;
};

// A stall shorter than query_timeout: every request completes, only slower.
TEST_F(FaultNet, StallShorterThanQueryTimeoutCostsLatencyNotErrors) {
    Run r;
    run(
        [&] {
            relay_->set_mode(RelayMode::kStall);
            std::this_thread::sleep_for(1000ms);
            relay_->set_mode(RelayMode::kPass);
        },
        r);
    if (HasFatalFailure()) return;
    EXPECT_EQ(r.load->failed(), 0) << r.load->summary();
    EXPECT_GE(r.load->max_request_ms(), 900) << "the stall did not hold a request up: " << r.load->summary();
    std::optional<long long> rec = r.load->first_commit_after(r.healed);
    ASSERT_TRUE(rec.has_value()) << r.load->summary();
    EXPECT_LE(*rec, 1000) << r.load->summary();
}

// A stall longer than query_timeout (5 s vs 2 s): the transactions in flight fail by query_timeout, clients
// waiting for a server wait (query_wait_timeout 8 s) and the pool logs in again once the network is back.
// Every request ends (success or error) within query_wait_timeout + query_timeout + slack.
TEST_F(FaultNet, LongStallIsBoundedByQueryTimeoutAndRecovers) {
    Run r;
    run(
        [&] {
            relay_->set_mode(RelayMode::kStall);
            std::this_thread::sleep_for(5000ms);
            relay_->set_mode(RelayMode::kPass);
        },
        r, 3000ms);
    if (HasFatalFailure()) return;
    EXPECT_GE(r.load->failed(), 1) << "query_timeout did not end a stalled query: " << r.load->summary();
    EXPECT_LE(r.load->failed(), kPool) << "only the transactions in flight may fail: " << r.load->summary();
    EXPECT_LE(r.load->max_request_ms(), (kQueryWaitTimeoutS + kQueryTimeoutS + 2) * 1000LL)
        << r.load->summary();
    std::optional<long long> rec = r.load->first_commit_after(r.healed);
    ASSERT_TRUE(rec.has_value()) << r.load->summary();
    EXPECT_LE(*rec, (kConnectTimeoutS + 1) * 1000LL) << r.load->summary();
}

// Bytes dropped for 4 s (a blackhole: the connections that lost bytes are dead and are reset when the route
// comes back): like the long stall, in-flight transactions end by query_timeout, logins through the blackhole
// by server_connect_timeout, and the pool recovers with fresh connections.
TEST_F(FaultNet, BlackholeIsBoundedByQueryTimeoutAndRecovers) {
    Run r;
    run(
        [&] {
            relay_->set_mode(RelayMode::kBlackhole);
            std::this_thread::sleep_for(4000ms);
            relay_->set_mode(RelayMode::kPass);
        },
        r, 3000ms);
    if (HasFatalFailure()) return;
    EXPECT_GT(relay_->dropped_bytes(), 0);
    EXPECT_GE(r.load->failed(), 1) << "query_timeout did not end a blackholed query: " << r.load->summary();
    EXPECT_LE(r.load->failed(), kPool) << "only the transactions in flight may fail: " << r.load->summary();
    EXPECT_LE(r.load->max_request_ms(), (kQueryWaitTimeoutS + kQueryTimeoutS + 2) * 1000LL)
        << r.load->summary();
    std::optional<long long> rec = r.load->first_commit_after(r.healed);
    ASSERT_TRUE(rec.has_value()) << r.load->summary();
    EXPECT_LE(*rec, (kConnectTimeoutS + 1) * 1000LL) << r.load->summary();
}

// Every server connection reset (RST) twice, 300 ms apart: only the transactions in flight on them fail.
TEST_F(FaultNet, ConnectionsResetUnderLoadFailOnlyTransactionsInFlight) {
    Run r;
    run(
        [&] {
            relay_->reset_all();
            std::this_thread::sleep_for(300ms);
            relay_->reset_all();
        },
        r);
    if (HasFatalFailure()) return;
    EXPECT_LE(r.load->failed(), 2 * kPool) << r.load->summary();
    std::optional<long long> rec = r.load->first_commit_after(r.healed);
    ASSERT_TRUE(rec.has_value()) << r.load->summary();
    EXPECT_LE(*rec, 1000) << r.load->summary();
}

}  // namespace
}  // namespace itest
