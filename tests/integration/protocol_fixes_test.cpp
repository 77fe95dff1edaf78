// Owns the integration tests of issue 15's protocol fixes: 08P01 for a malformed Parse,
// NegotiateProtocolVersion for protocol 3.2 and `_pq_.` options, admin console queries past 64 KB, a client
// stalled in the middle of a message, and the log line of a connection refused before login.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

class ProtocolFixes : public PoolerTest {};

std::string first_error_sqlstate(RawConn& raw, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto m =
            raw.read_message(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
        if (!m) return raw.eof() ? "closed" : "timeout";
        if (m->type == 'E') return parse_error_fields(m->payload).sqlstate;
    }
    return "timeout";
}

TEST_F(ProtocolFixes, MalformedParseIsAProtocolViolation) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard's SQLSTATE choice";
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(raw_login(raw, kApp, "db", "").ready);
    // A Parse without the NULs that end its name and query, then Sync.
    ASSERT_TRUE(raw.send(RawConn::message('P', "stmt_without_nuls") + RawConn::message('S', "")));
    EXPECT_EQ(first_error_sqlstate(raw, 5s), "08P01");
    PgConn next(pooler.dsn(kApp));
    ASSERT_TRUE(next.ok()) << next.connect_error();
    EXPECT_EQ(next.exec("select 'served'").value(), "served");
}

TEST_F(ProtocolFixes, Protocol32AndUnknownOptionsGetNegotiateProtocolVersion) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer's own negotiation";
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(raw.send(RawConn::startup_packet(
        {{"user", kApp}, {"database", "db"}, {"_pq_.test_option", "1"}}, 0x00030002)));
    bool negotiated = false, ready = false;
    const auto deadline = Clock::now() + 5s;
    while (Clock::now() < deadline && !ready) {
        auto m = raw.read_message(2s);
        ASSERT_TRUE(m.has_value()) << "no ReadyForQuery (eof=" << raw.eof() << ")";
        ASSERT_NE(m->type, 'E') << parse_error_fields(m->payload).message;
        if (m->type == 'v') {
            negotiated = true;
            ASSERT_GE(m->payload.size(), 8u);
            EXPECT_EQ(m->payload.substr(0, 4), RawConn::int32(0)) << "serves minor version 0";
            EXPECT_EQ(m->payload.substr(4, 4), RawConn::int32(1));
            EXPECT_EQ(m->payload.substr(8), std::string("_pq_.test_option\0", 17));
        }
        ready = m->type == 'Z';
    }
    EXPECT_TRUE(negotiated);
    EXPECT_TRUE(ready) << "the login goes on in 3.0";
}

TEST_F(ProtocolFixes, AdminQueryPast64KBWorksAndPastTheBoundGetsAClearError) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard's bound";
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("admin_users", kApp);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(raw_login(raw, kApp, "pgbouncer", "").ready);
    // 100 KB of blanks around a SHOW: over the authentication phase's 64 KB, within the admin bound.
    RawQueryOutcome ok = raw_query(raw, "SHOW VERSION" + std::string(100 * 1024, ' ') + ";", 5s);
    EXPECT_TRUE(ok.error.sqlstate.empty()) << ok.error.message;
    EXPECT_FALSE(ok.closed);
    // 2 MB: an ERROR naming the limit, and the console goes on.
    RawQueryOutcome big = raw_query(raw, "SHOW VERSION" + std::string(2 * 1024 * 1024, ' '), 10s);
    EXPECT_EQ(big.error.sqlstate, "54000") << big.error.message;
    EXPECT_NE(big.error.message.find("too long"), std::string::npos) << big.error.message;
    RawQueryOutcome after = raw_query(raw, "SHOW VERSION", 5s);
    EXPECT_TRUE(after.error.sqlstate.empty() && !after.closed) << after.error.message;
}

TEST_F(ProtocolFixes, ClientStalledMidMessageHoldsNoServerAndIsEnded) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer holds the server (issue 15)";
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.raw_pgbouncer_lines = {"[poolguard]", "partial_message_timeout = 2"};
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    RawConn stalled;
    ASSERT_TRUE(stalled.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(raw_login(stalled, kApp, "db", "").ready);
    // Half a Query: the header says 100 bytes, 10 come.
    ASSERT_TRUE(stalled.send(std::string("Q") + RawConn::int32(100) + "select 1 "));
    std::this_thread::sleep_for(300ms);
    // The only server of the pool is free for someone else meanwhile.
    PgConn other(pooler.dsn(kApp));
    ASSERT_TRUE(other.ok()) << other.connect_error();
    QueryResult r = other.exec("select 'not blocked'", 3s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_LT(r.elapsed_ms, 1500);
    // And the stalled client is told after partial_message_timeout.
    const auto start = Clock::now();
    EXPECT_EQ(first_error_sqlstate(stalled, 6s), "08P01");
    EXPECT_LT(elapsed_ms(start), 4000);
}

TEST_F(ProtocolFixes, RefusedConnectionIsLoggedWithItsPeerAddress) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard's log format";
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    sockaddr_in local{};
    socklen_t len = sizeof local;
    ASSERT_EQ(getsockname(raw.fd(), reinterpret_cast<sockaddr*>(&local), &len), 0);
    // Protocol 2.0 (1234.5678 would be the CancelRequest code, refused as bad_cancel).
    ASSERT_TRUE(raw.send(RawConn::int32(8) + RawConn::int32(2 << 16)));
    EXPECT_TRUE(pooler.wait_for_log(
        "127.0.0.1:" + std::to_string(ntohs(local.sin_port)) + " refused before login: unsupported_protocol",
        3s));
}

}  // namespace
}  // namespace itest
