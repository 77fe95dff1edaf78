// Owns the lifetime regression tests (issue 15 item 4): a reload storm during slow SCRAM logins, and clients
// that vanish at every await point of a relay. Meant for the ASan build (build-asan/integration_tests), where
// a use after free aborts the pooler and check_sanitizer_reports() fails the test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "fixtures.h"
#include "protocol/pg/scram.h"

namespace itest {
namespace {

namespace pg = poolguard::protocol::pg;

// High enough that libpq spends a long time in PBKDF2 between poolguard's SCRAM messages: each login is a
// long window for a reload to replace the configuration under it. (100,000 also showed the bug, but 100
// such logins took longer than client_login_timeout on a loaded 2-core machine: libpq pays an HMAC set-up
// per iteration.)
constexpr int kScramIterations = 30000;
constexpr int kLogins = 100;

class Lifetimes : public PoolerTest {};

std::string slow_scram_secret(const std::string& password) {
    return pg::format_scram_secret(pg::make_scram_secret(password, "lifetime-test-salt", kScramIterations));
}

// Tight loop of RELOAD, admin SET and SIGHUP until `stop`; counts what it did.
struct ReloadStorm {
    std::atomic<bool> stop{false};
    std::atomic<int> reloads{0};
    std::thread thread;

    void start(PoolguardProcess& pooler) {
        thread = std::thread([this, &pooler] {
            PgConn admin(pooler.unix_dsn("pgbouncer", "", "pgbouncer"));
            for (int i = 0; !stop.load(); ++i) {
                if (i % 10 == 9) {
                    pooler.send_signal(SIGHUP);
                } else if (admin.ok()) {
                    admin.exec(i % 2 == 0   ? "RELOAD"
                               : i % 4 == 1 ? "SET log_pooler_errors = 0"
                                            : "SET log_pooler_errors = 1",
                               5s);
                } else {
                    admin.connect(pooler.unix_dsn("pgbouncer", "", "pgbouncer"), 5s);
                }
                reloads++;
                std::this_thread::sleep_for(1ms);
            }
        });
    }
    void finish() {
        stop.store(true);
        if (thread.joinable()) thread.join();
    }
    ~ReloadStorm() { finish(); }
};

// Before the fix, read_startup() kept `const Config&` across authenticate(): the reload freed it and the
// login read freed memory (ASan: heap-use-after-free in ClientSession::read_startup).
TEST_F(Lifetimes, ReloadStormDuringConcurrentSlowScramLogins) {
    PoolerConfig cfg = base_config("transaction", 4);
    cfg.set("auth_type", "scram-sha-256");
    cfg.userlist.clear();
    cfg.auth(kApp, slow_scram_secret(kAppPass));
    cfg.set("log_pooler_errors", 1);
    cfg.set("client_login_timeout", 240);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());

    ReloadStorm storm;
    storm.start(pooler);
    std::atomic<int> succeeded{0}, failed_cleanly{0};
    std::vector<std::string> failures(kLogins);
    std::vector<std::thread> clients;
    for (int i = 0; i < kLogins; ++i) {
        clients.emplace_back([&, i] {
            PgConn c(pooler.dsn(kApp, kAppPass), 240s);
            if (!c.ok()) {
                failures[i] = "login: " + c.connect_error();
                failed_cleanly++;
                return;
            }
            QueryResult r = c.exec("select 1", 60s);
            if (r.ok() && r.value() == "1") {
                succeeded++;
            } else {
                failures[i] = "query: " + r.describe();
                failed_cleanly++;
            }
        });
    }
    for (auto& t : clients)
        t.join();
    storm.finish();
    EXPECT_GT(storm.reloads.load(), 20) << "the storm must overlap the logins";
    EXPECT_TRUE(pooler.running()) << "poolguard died during the reload storm";
    // A reload changes nothing that refuses a login: every one must succeed.
    EXPECT_EQ(succeeded.load(), kLogins) << "failed: " << failed_cleanly.load();
    for (int i = 0; i < kLogins; ++i)
        if (!failures[i].empty()) ADD_FAILURE() << "client " << i << ": " << failures[i];
    PgConn after(pooler.dsn(kApp, kAppPass), 30s);
    ASSERT_TRUE(after.ok()) << after.connect_error();
    EXPECT_TRUE(Ok(after.exec("select 1")));
}

// ---- clients that vanish in the middle of a relay ----

// Ends the connection with a reset (SO_LINGER 0), as a crashed client or a dropped network path does.
void reset_close(RawConn& c) {
    if (c.fd() >= 0) {
        linger l{1, 0};
        ::setsockopt(c.fd(), SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    c.close();
}

std::string query_msg(const std::string& sql) {
    return RawConn::message('Q', sql + std::string(1, '\0'));
}
std::string parse_msg(const std::string& name, const std::string& sql) {
    return RawConn::message('P',
                            name + std::string(1, '\0') + sql + std::string(1, '\0') + RawConn::int16(0));
}
std::string bind_execute_msgs(const std::string& name) {
    return RawConn::message('B', std::string(1, '\0') + name + std::string(1, '\0') + RawConn::int16(0) +
                                     RawConn::int16(0) + RawConn::int16(0)) +
           RawConn::message('E', std::string(1, '\0') + RawConn::int32(0));
}
std::string close_msg(const std::string& name) {
    return RawConn::message('C', "S" + name + std::string(1, '\0'));
}
std::string sync_msg() {
    return RawConn::message('S', "");
}

// 40 MB of rows: far more than the socket buffers hold, so the relay waits on the client's socket.
constexpr int kDelaysMs[] = {0, 1, 3, 10, 30};

const std::string kLargeResult = "select repeat('x', 1000) from generate_series(1, 40000)";

class RelayLifetimes : public PoolerTest, public ::testing::WithParamInterface<std::string> {
  protected:
    static void SetUpTestSuite() {
        PoolerTest::SetUpTestSuite();
        if (!server_->ok()) return;
        server_->exec("CREATE TABLE lifetime_copy(x text); GRANT ALL ON lifetime_copy TO PUBLIC");
    }

    static PoolerConfig relay_config(const std::string& mode) {
        PoolerConfig cfg = base_config(mode, 2);
        cfg.set("max_prepared_statements", 10);
        cfg.set("query_wait_timeout", 20);
        return cfg;
    }

    // A raw client logged in as app, or a failed assertion.
    static std::unique_ptr<RawConn> login(PoolguardProcess& pooler) {
        auto c = std::make_unique<RawConn>();
        EXPECT_TRUE(c->connect_tcp(pooler.host(), pooler.port()));
        LoginOutcome o = raw_login(*c, kApp, "db", kAppPass);
        EXPECT_TRUE(o.ready) << o.describe();
        return c;
    }

    // A client sends, waits 0..30 ms and resets, five times; then the pooler must still serve.
    static void reset_at_each_delay(PoolguardProcess& pooler, const std::string& what,
                                    const std::function<void(RawConn&)>& send) {
        for (int delay : kDelaysMs) {
            auto c = login(pooler);
            if (::testing::Test::HasFailure()) return;
            send(*c);
            std::this_thread::sleep_for(std::chrono::milliseconds(delay));
            reset_close(*c);
        }
        expect_serving(pooler, what);
    }

    // The pooler is up and serves a new client promptly (no server left stuck with a dead client).
    static void expect_serving(PoolguardProcess& pooler, const std::string& what) {
        ASSERT_TRUE(pooler.running()) << "poolguard died: " << what;
        PgConn c(pooler.dsn(kApp, kAppPass), 20s);
        ASSERT_TRUE(c.ok()) << what << ": " << c.connect_error();
        EXPECT_TRUE(Ok(c.exec("select 1", 20s))) << what;
    }
};

// Each way into a relay, the client reset after 0..30 ms: the server relay is caught in its write to the
// client, its wait for the client's write gate, or its read from the server; the client's relay in its read,
// its write to the server, or its wait for a server.
TEST_P(RelayLifetimes, ClientResetAtEveryAwaitOfTheRelay) {
    PoolguardProcess pooler(relay_config(GetParam()));
    ASSERT_TRUE(pooler.start());
    struct Case {
        const char* name;
        std::function<void(RawConn&)> send;
    };
    const std::vector<Case> cases = {
        {"mid large result", [](RawConn& c) { c.send(query_msg(kLargeResult)); }},
        {"mid query", [](RawConn& c) { c.send(query_msg("select pg_sleep(0.05), 1")); }},
        {"mid COPY OUT", [](RawConn& c) { c.send(query_msg("COPY (" + kLargeResult + ") TO STDOUT")); }},
        {"mid prepared pipeline",
         [](RawConn& c) {
             // Parse once, then Bind/Execute with Close + re-Parse of the known statement: poolguard answers
             // those itself, so the client's own writes and the relayed rows take turns at the write gate.
             std::string batch = parse_msg("s1", kLargeResult) + sync_msg();
             for (int i = 0; i < 20; ++i)
                 batch +=
                     bind_execute_msgs("s1") + close_msg("s1") + parse_msg("s1", kLargeResult) + sync_msg();
             c.send(batch);
         }},
    };
    for (const auto& cs : cases)
        reset_at_each_delay(pooler, cs.name, cs.send);
    // While waiting for a server: every server held by a client inside a transaction.
    {
        std::vector<std::unique_ptr<PgConn>> holders;
        for (int i = 0; i < 2; ++i) {
            holders.push_back(std::make_unique<PgConn>(pooler.dsn(kApp, kAppPass)));
            ASSERT_TRUE(holders.back()->ok());
            ASSERT_TRUE(Ok(holders.back()->exec("begin; select 1")));
        }
        for (int delay : kDelaysMs) {
            auto c = login(pooler);
            c->send(query_msg("select 1"));
            std::this_thread::sleep_for(std::chrono::milliseconds(delay));
            reset_close(*c);
        }
        for (auto& h : holders)
            EXPECT_TRUE(Ok(h->exec("commit")));
    }
    expect_serving(pooler, "while waiting for a server");
}

// The admin verbs that end a linked client or its server while rows are on their way to it.
TEST_P(RelayLifetimes, KillKillClientAndReconnectWhileLinked) {
    PoolerConfig cfg = relay_config(GetParam());
    cfg.set("admin_users", kApp2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn admin(pooler.dsn(kApp2, kApp2Pass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    for (const char* verb : {"KILL db", "KILL_CLIENT", "RECONNECT db"}) {
        for (int round = 0; round < 3; ++round) {
            auto c = login(pooler);
            if (::testing::Test::HasFailure()) return;
            c->send(query_msg(kLargeResult));
            std::this_thread::sleep_for(std::chrono::milliseconds(5 * round));
            std::string sql = verb;
            if (sql == "KILL_CLIENT") {
                QueryResult clients = admin.exec("SHOW CLIENTS");
                const auto id_col = std::find(clients.columns.begin(), clients.columns.end(), "id");
                const auto user_col = std::find(clients.columns.begin(), clients.columns.end(), "user");
                ASSERT_NE(id_col, clients.columns.end());
                std::string id;
                for (const auto& row : clients.rows)
                    if (row[user_col - clients.columns.begin()] == kApp)
                        id = row[id_col - clients.columns.begin()];
                ASSERT_FALSE(id.empty());
                sql += " " + id;
            }
            EXPECT_TRUE(Ok(admin.exec(sql))) << sql;
            if (round == 0) {
                (void)c->wait_closed(sql == "RECONNECT db" ? 2s : 10s);  // reads what is left, to the end
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(20 * (round - 1)));
                reset_close(*c);  // and the client goes too, right after the verb
            }
            // KILL also holds new clients of the database (as PgBouncer does) until RESUME.
            if (sql == "KILL db") {
                EXPECT_TRUE(Ok(admin.exec("RESUME db")));
            }
        }
        expect_serving(pooler, verb);
    }
}

// Found by this suite: a client reset in the middle of a COPY FROM STDIN went unnoticed (its relay's drained
// wait waited for a readiness edge that had come with its last bytes, and the server sends it nothing that
// could fail), so the session held its server for good and the next clients waited until the breaker
// refused them. The janitor now peeks once a second at a client in the same drained wait and re-arms the
// wait when anything is there (session/client_session.cpp, check_timeouts).
TEST_P(RelayLifetimes, ClientResetMidCopyIn) {
    PoolerConfig cfg = relay_config(GetParam());
    cfg.set("admin_users", kApp);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    reset_at_each_delay(pooler, "mid COPY IN", [](RawConn& c) {
        c.send(query_msg("COPY lifetime_copy FROM STDIN"));
        (void)c.read_message(2s);  // CopyInResponse
        c.send(RawConn::message('d', std::string(4000, 'y') + "\n") + RawConn::message('d', "partial"));
    });
    // Every reset client's session ended and gave its server back (within the janitor's second, plus
    // slack): none is left holding a server for a client that is gone.
    PgConn admin(pooler.dsn(kApp, kAppPass, "pgbouncer"));
    std::string last;
    const auto deadline = Clock::now() + 4s;
    while (true) {
        QueryResult r = admin.exec("SHOW POOLS");
        ASSERT_TRUE(Ok(r));
        int busy = 0;
        for (const auto& row : r.rows)
            if (row.at(0) == "db")
                busy = std::stoi(row.at(2)) + std::stoi(row.at(6));  // cl_active + sv_active
        if (busy == 0) break;
        last = std::to_string(busy);
        ASSERT_LT(Clock::now(), deadline)
            << "cl_active + sv_active still " << last << " after the resets: a session outlived its client";
        std::this_thread::sleep_for(100ms);
    }
}

INSTANTIATE_TEST_SUITE_P(Modes, RelayLifetimes, ::testing::Values("transaction", "session"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace itest
