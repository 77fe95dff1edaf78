// Owns the peering tests (peer_id + [peers], PgBouncer 1.19+): a cancel request that reaches the wrong
// pooler (as behind a TCP load balancer) is forwarded to the one holding the client, between two poolguards
// and between poolguard and PgBouncer 1.25.2, and a request bouncing between peers ends after 3 hops.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

constexpr uint32_t kCancelCode = 80877102;

std::string cancel_request(uint32_t pid, uint32_t key) {
    return RawConn::int32(16) + RawConn::int32(static_cast<int32_t>(kCancelCode)) +
           RawConn::int32(static_cast<int32_t>(pid)) + RawConn::int32(static_cast<int32_t>(key));
}

// Sends a CancelRequest to 127.0.0.1:port and waits until the pooler closes that connection.
::testing::AssertionResult send_cancel(int port, uint32_t pid, uint32_t key) {
    RawConn c;
    if (!c.connect_tcp("127.0.0.1", port)) return ::testing::AssertionFailure() << "connect to " << port;
    if (!c.send(cancel_request(pid, key))) return ::testing::AssertionFailure() << "send";
    if (!c.wait_closed(10s)) return ::testing::AssertionFailure() << "cancel connection not closed in 10 s";
    return ::testing::AssertionSuccess();
}

// A client running pg_sleep through a pooler; the cancel key is the one the pooler gave it.
struct SleepingClient {
    RawConn conn;
    LoginOutcome login;

    ::testing::AssertionResult start(int port) {
        if (!conn.connect_tcp("127.0.0.1", port)) return ::testing::AssertionFailure() << "connect";
        login = raw_login(conn, kApp, "db", kAppPass);
        if (!login.ready) return ::testing::AssertionFailure() << login.describe();
        if (!conn.send(RawConn::message('Q', std::string("select pg_sleep(30)") + '\0')))
            return ::testing::AssertionFailure() << "send query";
        std::this_thread::sleep_for(300ms);  // the query reaches the server
        return ::testing::AssertionSuccess();
    }

    // The SQLSTATE of the query's error, "" when it ended without one, "timeout" when nothing came.
    std::string outcome(std::chrono::milliseconds timeout) {
        std::string sqlstate;
        while (true) {
            auto m = conn.read_message(timeout);
            if (!m) return conn.timed_out() ? "timeout" : "closed";
            if (m->type == 'E') sqlstate = parse_error_fields(m->payload).sqlstate;
            if (m->type == 'Z') return sqlstate;
        }
    }
};

class Peering : public PoolerTest {
  protected:
    // Two peers' configs: each lists both (its own entry is allowed and ignored).
    PoolerConfig peer_config(int self, int port, const std::vector<std::pair<int, int>>& peers) {
        PoolerConfig c = base_config("transaction", 2);
        c.set("listen_port", port);
        c.set("peer_id", self);
        c.set("admin_users", kApp);
        for (const auto& [id, p] : peers)
            c.peers.push_back(std::to_string(id) + " = host=127.0.0.1 port=" + std::to_string(p));
        return c;
    }

    // A client of `holder` runs pg_sleep; its cancel request goes to `other`, which must pass it on.
    void expect_forwarded(const PoolguardProcess& holder, const PoolguardProcess& other) {
        SleepingClient client;
        ASSERT_TRUE(client.start(holder.port()));
        const auto t0 = Clock::now();
        EXPECT_TRUE(send_cancel(other.port(), client.login.backend_pid, client.login.backend_key));
        EXPECT_EQ(client.outcome(10s), "57014") << "the query was not cancelled through the peer";
        EXPECT_LT(Clock::now() - t0, 5s);
        // The connection is usable afterwards.
        auto after = raw_query(client.conn, "select 1");
        EXPECT_TRUE(after.ready && after.error.sqlstate.empty()) << after.error.message;
    }
};

TEST_F(Peering, CancelSentToTheOtherPoolerIsForwardedToTheClientsOwn) {
    const int pa = free_tcp_port(), pb = free_tcp_port();
    const std::vector<std::pair<int, int>> peers{{1, pa}, {2, pb}};
    PoolguardProcess a(peer_config(1, pa, peers));
    PoolguardProcess b(peer_config(2, pb, peers));
    ASSERT_TRUE(a.start());
    ASSERT_TRUE(b.start());
    expect_forwarded(a, b);
    expect_forwarded(b, a);
    // Sent to the right pooler directly, it works as without peering.
    expect_forwarded(a, a);

    // SHOW PEER_POOLS: the peer B forwarded to, with nothing in flight now.
    auto rows = PgConn(b.dsn(kApp, kAppPass, "pgbouncer")).exec("SHOW PEER_POOLS");
    ASSERT_TRUE(Ok(rows));
    ASSERT_EQ(rows.rows.size(), 1u);
    EXPECT_EQ(rows.rows[0][0], "1");
    EXPECT_EQ(rows.rows[0][1], "0");
    EXPECT_EQ(rows.rows[0][2], "0");
}

// The key layout is PgBouncer 1.21+'s: a poolguard and a PgBouncer 1.25.2 peered with each other forward each
// other's cancel requests.
TEST_F(Peering, PoolguardAndPgbouncerForwardEachOthersCancels) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard against PgBouncer by design";
    if (PoolguardProcess::pgbouncer_binary().empty())
        GTEST_SKIP() << PoolguardProcess::pgbouncer_unavailable_reason();
    const int pa = free_tcp_port(), pb = free_tcp_port();
    const std::vector<std::pair<int, int>> peers{{1, pa}, {2, pb}};
    PoolguardProcess a(peer_config(1, pa, peers), PoolerKind::kPoolguard);
    PoolguardProcess b(peer_config(2, pb, peers), PoolerKind::kPgbouncer);
    ASSERT_TRUE(a.start());
    ASSERT_TRUE(b.start());
    expect_forwarded(b, a);  // PgBouncer's client, cancel to poolguard
    expect_forwarded(a, b);  // poolguard's client, cancel to PgBouncer
}

// A [peers] entry that points back at the pooler itself (a misconfiguration): the request bounces, the TTL
// runs out after 3 forwards, and it is refused with a line saying so; nothing hangs or loops.
TEST_F(Peering, ARequestBouncingBetweenPeersEndsWhenItsTtlIsSpent) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard's log text";
    const int pa = free_tcp_port();
    PoolerConfig c = peer_config(1, pa, {});
    // Each hop holds a slot of the peer's pool_size until the next hop is done: room for all three.
    c.peers.push_back("2 = host=127.0.0.1 port=" + std::to_string(pa) + " pool_size=4");
    PoolguardProcess a(c);
    ASSERT_TRUE(a.start());
    // A key of peer 2 (its id in bytes 1-2 of the process id, TTL 3 in the secret's low bits).
    std::mt19937 rng(7);
    const uint32_t pid = (rng() & 0x7f0000ffu) | (2u << 16);
    const uint32_t key = static_cast<uint32_t>(rng()) | 3u;
    EXPECT_TRUE(send_cancel(pa, pid, key));
    EXPECT_TRUE(a.wait_for_log("already forwarded 3 times", 5s)) << a.log_contents();
    // A peer id that [peers] does not list.
    const uint32_t pid9 = (pid & 0xff0000ffu) | (9u << 16);
    EXPECT_TRUE(send_cancel(pa, pid9, key));
    EXPECT_TRUE(a.wait_for_log("no such peer in [peers]", 5s)) << a.log_contents();
    EXPECT_TRUE(a.running());
}

// Every cancel key handed out carries the pooler's peer id and a full TTL, and a positive process id.
TEST_F(Peering, CancelKeysCarryThePeerId) {
    const int pa = free_tcp_port();
    PoolguardProcess a(peer_config(300, pa, {{300, pa}}));
    ASSERT_TRUE(a.start());
    for (int i = 0; i < 20; ++i) {
        LoginOutcome l = raw_login("127.0.0.1", pa, kApp, "db", kAppPass);
        ASSERT_TRUE(l.ready) << l.describe();
        EXPECT_EQ(((l.backend_pid >> 16) & 0xff) | (((l.backend_pid >> 8) & 0xff) << 8), 300u);
        EXPECT_EQ(l.backend_key & 3u, 3u);
        EXPECT_EQ(l.backend_pid & 0x80000000u, 0u);
    }
}

}  // namespace
}  // namespace itest
