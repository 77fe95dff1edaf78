// Owns the integration tests of parked idle clients against a real PostgreSQL: a client idle for about a
// second has no coroutine left (poolguard_clients_parked counts it), and everything about it still works —
// its next query, its prepared statements, client_idle_timeout, its own hang-up, and a shutdown.
#include <gtest/gtest.h>

#include <signal.h>

#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

class IdleClients : public PoolerTest {
  protected:
    static void SetUpTestSuite() { start_server(TempPostgresOptions{}); }
};

// The value of poolguard_clients_parked, or -1 when /metrics did not answer.
int parked(int port) {
    const std::string m = http_get(port, "/metrics");
    const std::string key = "\npoolguard_clients_parked ";
    const size_t at = m.find(key);
    if (at == std::string::npos) return -1;
    return std::stoi(m.substr(at + key.size()));
}

PoolerConfig with_metrics(PoolerConfig cfg, int http_port) {
    cfg.raw_pgbouncer_lines = {"[poolguard]", "http_listen = 127.0.0.1:" + std::to_string(http_port)};
    return cfg;
}

TEST_F(IdleClients, ParkedClientsResumeWithTheirSessionStateIntact) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only behaviour";
    const int http_port = free_tcp_port();
    PoolerConfig cfg = with_metrics(base_config("transaction", 4), http_port);
    cfg.set("admin_users", kApp);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());

    constexpr int kClients = 40;
    std::vector<PgConn> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back(pooler.dsn(kApp));
        ASSERT_TRUE(clients.back().ok()) << clients.back().connect_error();
        // Named prepared statements live in the session (poolguard re-prepares them per server).
        ASSERT_TRUE(clients.back().prepare("plus", "select $1::int + " + std::to_string(i), 1).ok());
        ASSERT_TRUE(clients.back().exec("select 1").ok());
    }
    ASSERT_TRUE(eventually([&] { return parked(http_port) == kClients; }, 5s))
        << "parked: " << parked(http_port);

    // Every parked client answers its next query (both protocols) with its own state.
    for (int i = 0; i < kClients; ++i) {
        QueryResult r = clients[i].exec_prepared("plus", {"1000"}, 5s);
        ASSERT_TRUE(r.ok()) << "client " << i << ": " << r.describe();
        EXPECT_EQ(r.value(), std::to_string(1000 + i));
        QueryResult s = clients[i].exec("select 2", 5s);
        ASSERT_TRUE(s.ok()) << s.describe();
    }

    // Parked again, then hang up: each is unregistered (the gauge and SHOW CLIENTS drop to nothing).
    ASSERT_TRUE(eventually([&] { return parked(http_port) == kClients; }, 5s));
    clients.resize(kClients / 2);
    ASSERT_TRUE(eventually([&] { return parked(http_port) == kClients / 2; }, 5s))
        << "parked: " << parked(http_port);
    PgConn admin(pooler.dsn(kApp, kAppPass, "pgbouncer"));
    QueryResult shown = admin.exec("SHOW CLIENTS");
    ASSERT_TRUE(shown.ok()) << shown.describe();
    EXPECT_EQ(shown.rows.size(), static_cast<size_t>(kClients / 2 + 1)) << shown.describe();  // + admin
    clients.clear();
    EXPECT_TRUE(eventually([&] { return parked(http_port) == 0; }, 5s)) << "parked: " << parked(http_port);
}

// A client that logs in and sends nothing is parked at once (its login's frames are freed right away, so
// the next logins reuse them instead of leaving holes between idle sessions). Its first query, whenever it
// comes, runs with what its startup packet asked for; a client that queries at once is never held up.
TEST_F(IdleClients, ClientsParkedRightAfterLoginKeepTheirStartupParameters) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only behaviour";
    const int http_port = free_tcp_port();
    PoolguardProcess pooler(with_metrics(base_config("transaction", 2), http_port));
    ASSERT_TRUE(pooler.start());

    constexpr int kClients = 12;
    std::vector<PgConn> clients;
    for (int i = 0; i < kClients; ++i) {
        clients.emplace_back(pooler.dsn(kApp, kAppPass, "db", "application_name=idle" + std::to_string(i)));
        ASSERT_TRUE(clients.back().ok()) << clients.back().connect_error();
    }
    // The gauge is sampled once a second, so this cannot tell "at once" from "after a second"; the
    // memory it saves is measured by bench/run --idle (docs/benchmarks.md).
    ASSERT_TRUE(eventually([&] { return parked(http_port) == kClients; }, 5s))
        << "parked: " << parked(http_port);
    for (int i = 0; i < kClients; ++i) {
        QueryResult r = clients[i].exec("select current_setting('application_name')", 5s);
        ASSERT_TRUE(r.ok()) << "client " << i << ": " << r.describe();
        EXPECT_EQ(r.value(), "idle" + std::to_string(i));
    }
    // Login and first query back to back, many times: nothing is lost between the two.
    for (int i = 0; i < 50; ++i) {
        PgConn c(pooler.dsn(kApp));
        ASSERT_TRUE(c.ok()) << c.connect_error();
        QueryResult r = c.exec("select " + std::to_string(i), 5s);
        ASSERT_TRUE(r.ok()) << r.describe();
        EXPECT_EQ(r.value(), std::to_string(i));
    }
}

TEST_F(IdleClients, ClientIdleTimeoutReachesParkedClients) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only behaviour";
    const int http_port = free_tcp_port();
    PoolerConfig cfg = with_metrics(base_config("transaction", 2), http_port);
    cfg.set("client_idle_timeout", 6);  // parked after ~1 s; the gauge is sampled once a second
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());

    RawConn idle;
    ASSERT_TRUE(idle.connect_tcp(pooler.host(), pooler.port()));
    LoginOutcome login = raw_login(idle, kApp, "db", kAppPass);
    ASSERT_TRUE(login.ready) << login.describe();
    ASSERT_TRUE(raw_query(idle, "select 1").ready);
    const auto since = Clock::now();
    ASSERT_TRUE(eventually([&] { return parked(http_port) == 1; }, 4500ms)) << "never parked";

    auto m = idle.read_message(8s);
    const long long waited = elapsed_ms(since);
    ASSERT_TRUE(m.has_value()) << "no message; eof=" << idle.eof();
    ASSERT_EQ(m->type, 'E');
    EXPECT_NE(parse_error_fields(m->payload).message.find("client_idle_timeout"), std::string::npos);
    EXPECT_TRUE(idle.wait_closed(3s));
    EXPECT_GE(waited, 5900);
    EXPECT_TRUE(eventually([&] { return parked(http_port) == 0; }, 3s)) << "parked: " << parked(http_port);
}

TEST_F(IdleClients, ShutdownClosesParkedClientsAndExits) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "poolguard-only behaviour";
    const int http_port = free_tcp_port();
    PoolguardProcess pooler(with_metrics(base_config("transaction", 2), http_port));
    ASSERT_TRUE(pooler.start());
    std::vector<PgConn> clients;
    for (int i = 0; i < 10; ++i) {
        clients.emplace_back(pooler.dsn(kApp));
        ASSERT_TRUE(clients.back().ok()) << clients.back().connect_error();
        ASSERT_TRUE(clients.back().exec("select 1").ok());
    }
    ASSERT_TRUE(eventually([&] { return parked(http_port) == 10; }, 5s)) << "parked: " << parked(http_port);
    const auto since = Clock::now();
    pooler.send_signal(SIGINT);
    EXPECT_TRUE(pooler.wait_exit(10s).has_value()) << "poolguard did not exit with parked clients";
    EXPECT_LT(elapsed_ms(since), 5000);
    for (auto& c : clients)
        EXPECT_FALSE(c.exec("select 1", 2s).ok()) << "a client survived the shutdown";
}

}  // namespace
}  // namespace itest
