// Owns the integration tests of PgBouncer's client and server timeouts (client_idle_timeout,
// client_login_timeout, server_idle_timeout, server_lifetime, server_connect_timeout, server_login_retry,
// idle_transaction_timeout's rollback, query_timeout's freed server): each checks what the client sees and
// what the server (pg_stat_activity, its log, or a fake server socket) sees.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

// The suite's server wants SCRAM passwords over TCP, so that a wrong server password really fails.
class Timeouts : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.hba_method = "scram-sha-256";
        start_server(o);
        if (!server_->ok()) return;
        server_->exec("CREATE TABLE tmo_log(x int); GRANT ALL ON tmo_log TO PUBLIC");
    }
};

// A TCP listener that completes handshakes (the kernel does) but never accepts or answers: a server host
// that hangs after connect.
class SilentServer {
  public:
    SilentServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof addr;
        if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
            ::listen(fd_, 64) != 0 || ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
            return;
        port_ = ntohs(addr.sin_port);
    }
    ~SilentServer() {
        if (fd_ >= 0) ::close(fd_);
    }
    SilentServer(const SilentServer&) = delete;
    SilentServer& operator=(const SilentServer&) = delete;

    int port() const { return port_; }

    // Accepts one queued connection and reads it to the end: the bytes the peer sent before it closed.
    // nullopt when there was no connection, or it is still open after `timeout`.
    std::optional<std::string> accept_until_closed(std::chrono::milliseconds timeout) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 0) != 1) return std::nullopt;
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return std::nullopt;
        std::string got;
        auto deadline = Clock::now() + timeout;
        while (Clock::now() < deadline) {
            pollfd q{c, POLLIN, 0};
            if (::poll(&q, 1, 50) != 1) continue;
            char buf[4096];
            ssize_t n = ::read(c, buf, sizeof buf);
            if (n <= 0) {
                ::close(c);
                return got;
            }
            got.append(buf, static_cast<size_t>(n));
        }
        ::close(c);
        return std::nullopt;
    }

  private:
    int fd_ = -1;
    int port_ = 0;
};

long long count_occurrences(const std::string& text, const std::string& needle) {
    long long n = 0;
    for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1))
        ++n;
    return n;
}

TEST_F(Timeouts, ClientIdleTimeoutDisconnectsIdleClientAndKeepsItsServerPooled) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("client_idle_timeout", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());

    RawConn idle;
    ASSERT_TRUE(idle.connect_tcp(pooler.host(), pooler.port()));
    LoginOutcome login = raw_login(idle, kApp, "db", kAppPass);
    ASSERT_TRUE(login.ready) << login.describe();
    RawQueryOutcome q = raw_query(idle, "select 1");
    ASSERT_TRUE(q.ready && q.error.sqlstate.empty()) << q.error.message;
    auto idle_since = Clock::now();
    ASSERT_EQ(pg().count_backends("usename = 'app'"), 1);
    std::string server_pid = pg().query_scalar("select pid from pg_stat_activity where usename = 'app'");

    // A client that keeps working meanwhile is not cut off (its idle periods stay below the timeout).
    std::atomic<int> busy_failures{0};
    std::thread busy([&] {
        PgConn c(pooler.dsn(kApp));
        if (!c.ok()) {
            busy_failures.fetch_add(1);
            return;
        }
        for (int i = 0; i < 8; ++i) {
            if (!c.exec("select 1", 5s).ok()) busy_failures.fetch_add(1);
            std::this_thread::sleep_for(300ms);
        }
    });

    // The idle client is told why, then its connection is closed, about one second after its last query.
    auto m = idle.read_message(6s);
    long long waited = elapsed_ms(idle_since);
    busy.join();
    ASSERT_TRUE(m.has_value()) << "no message within 6 s; eof=" << idle.eof();
    ASSERT_EQ(m->type, 'E');
    ErrorFields f = parse_error_fields(m->payload);
    EXPECT_NE(f.message.find("client_idle_timeout"), std::string::npos) << f.message;
    EXPECT_TRUE(idle.wait_closed(3s)) << "the connection stayed open after the error";
    EXPECT_GE(waited, 900);
    EXPECT_LT(waited, 3500);
    EXPECT_EQ(busy_failures.load(), 0) << "a busy client was disconnected";

    // Server side: the backend was not closed with the client; it is idle in the pool and serves the next
    // one.
    EXPECT_EQ(pg().query_scalar("select state from pg_stat_activity where pid = " + server_pid), "idle");
    PgConn next(pooler.dsn(kApp));
    ASSERT_TRUE(next.ok()) << next.connect_error();
    QueryResult r = next.exec("select pg_backend_pid()", 5s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), server_pid);
}

TEST_F(Timeouts, ClientLoginTimeoutDropsClientsThatNeverFinishTheLogin) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("client_login_timeout", 1);
    cfg.set("auth_type", "md5");
    cfg.set("max_client_conn", 2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    auto start = Clock::now();
    // One client sends nothing at all; the other sends its startup packet and never answers the password
    // request. Together they fill max_client_conn.
    RawConn silent;
    ASSERT_TRUE(silent.connect_tcp(pooler.host(), pooler.port()));
    RawConn mute;
    ASSERT_TRUE(mute.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(mute.send(RawConn::startup_packet({{"user", kApp}, {"database", "db"}})));
    auto challenge = mute.read_message(3s);
    ASSERT_TRUE(challenge.has_value());
    EXPECT_EQ(challenge->type, 'R') << "expected an authentication request";
    if (!PoolguardProcess::testing_pgbouncer()) {  // pgbouncer 1.18 lets a third client in here
        PgConn third(pooler.dsn(kApp, kAppPass), 3s);
        EXPECT_FALSE(third.ok()) << "the two unfinished logins must hold max_client_conn's two slots";
    }

    EXPECT_TRUE(silent.wait_closed(5s)) << "a client that never sent a startup packet was kept";
    EXPECT_TRUE(mute.wait_closed(5s)) << "a client that never answered the password request was kept";
    long long waited = elapsed_ms(start);
    EXPECT_GE(waited, 900);
    EXPECT_LT(waited, 3500);
    // Their slots are free again, and no server connection was ever opened for them.
    PgConn c(pooler.dsn(kApp, kAppPass));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    PgConn d(pooler.dsn(kApp, kAppPass));
    ASSERT_TRUE(d.ok()) << d.connect_error();
    EXPECT_TRUE(Ok(c.exec("select 1")));
    EXPECT_EQ(pg().count_backends("usename = 'app'"), 1);
}

TEST_F(Timeouts, ServerIdleTimeoutClosesIdleServersBeyondMinPoolSize) {
    PoolerConfig cfg = base_config("transaction", 4);
    cfg.set("min_pool_size", 1);
    cfg.set("server_idle_timeout", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    std::vector<QueryResult> results =
        run_concurrently(std::vector<std::string>(4, pooler.dsn(kApp)), "select pg_sleep(0.5)");
    for (const auto& r : results)
        ASSERT_TRUE(r.ok()) << r.describe();
    auto released = Clock::now();
    const std::string app = "usename = 'app'";
    EXPECT_EQ(pg().count_backends(app), 4) << "four servers right after the queries";
    const std::string pids_before =
        pg().query_scalar("select string_agg(pid::text, ',') from pg_stat_activity where " + app);
    ASSERT_TRUE(eventually([&] { return pg().count_backends(app) <= 1; }, 5s))
        << pg().count_backends(app) << " backends left 5 s after the timeout of 1 s";
    long long waited = elapsed_ms(released);
    EXPECT_GE(waited, 700) << "servers were closed before server_idle_timeout";
    EXPECT_LT(waited, 3500);
    // min_pool_size keeps one of them: it is neither closed with the others nor closed and reopened.
    std::this_thread::sleep_for(1500ms);
    EXPECT_EQ(pg().count_backends(app), 1);
    const std::string kept = pg().query_scalar("select pid from pg_stat_activity where " + app);
    EXPECT_NE(("," + pids_before + ",").find("," + kept + ","), std::string::npos)
        << "the server kept for min_pool_size (pid " << kept << ") is not one of the used ones ("
        << pids_before << "): all were closed and a new one opened";
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult r = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), kept);
}

TEST_F(Timeouts, ServerClosedByPostgresFreesItsPoolSlotAtOnce) {
    PoolerConfig cfg = base_config("transaction", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult first = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(first.ok()) << first.describe();
    // The pool's only server is idle when its backend goes away; the slot must not stay taken.
    ASSERT_TRUE(Ok(pg().exec("select pg_terminate_backend(" + first.value() + ")")));
    ASSERT_TRUE(eventually([&] { return pg().count_backends("usename = 'app'") == 0; }, 3s));
    std::this_thread::sleep_for(100ms);
    QueryResult next = c.exec("select pg_backend_pid()", 5s);
    ASSERT_TRUE(next.ok()) << next.describe();
    EXPECT_NE(next.value(), first.value());
    EXPECT_LT(next.elapsed_ms, 1000) << "the replacement server waited for the dead one's slot";
}

TEST_F(Timeouts, ServerClosedByServerIdleTimeoutFreesItsPoolSlotAtOnce) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("server_idle_timeout", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult first = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(first.ok()) << first.describe();
    ASSERT_TRUE(eventually([&] { return pg().count_backends("pid = " + first.value()) == 0; }, 5s));
    // The backend has exited: the pool's only slot is free, a new server opens without waiting.
    QueryResult next = c.exec("select pg_backend_pid()", 5s);
    ASSERT_TRUE(next.ok()) << next.describe();
    EXPECT_NE(next.value(), first.value());
    EXPECT_LT(next.elapsed_ms, 1000) << "the new server waited for the closed one's slot";
}

TEST_F(Timeouts, MaxDbConnectionsEvictsAnotherPoolsIdleServerWithoutDelay) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.set("max_db_connections", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(Ok(a.exec("select 1")));
    ASSERT_EQ(pg().count_backends("usename = 'app'"), 1);
    // app2's pool needs the database's only slot: app's idle server is closed for it.
    PgConn b(pooler.dsn(kApp2));
    ASSERT_TRUE(b.ok()) << b.connect_error();
    QueryResult r = b.exec("select current_user", 5s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(), kApp2);
    EXPECT_LT(r.elapsed_ms, 1000) << "the eviction of the idle server took too long";
    EXPECT_EQ(pg().count_backends("usename in ('app', 'app2')"), 1);
}

TEST_F(Timeouts, ServerLifetimeReplacesOldServerWhenReleasedWithoutClientError) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("server_lifetime", 1);
    cfg.set("server_idle_timeout", "0");
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));
    QueryResult first = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(first.ok()) << first.describe();
    const std::string old_pid = first.value();
    // The server outlives server_lifetime while the client's transaction holds it: it must not be taken away.
    std::this_thread::sleep_for(1500ms);
    QueryResult inside = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(inside.ok()) << inside.describe();
    EXPECT_EQ(inside.value(), old_pid);
    ASSERT_TRUE(Ok(c.exec("COMMIT")));
    // Released past its lifetime: closed, and the next transaction gets a fresh backend without an error.
    EXPECT_TRUE(eventually([&] { return pg().count_backends("pid = " + old_pid) == 0; }, 3s))
        << "the old backend is still connected";
    QueryResult next = c.exec("select pg_backend_pid()");
    ASSERT_TRUE(next.ok()) << next.describe();
    EXPECT_NE(next.value(), old_pid);
    EXPECT_LT(next.elapsed_ms, 1000) << "the replacement waited for the old server's slot";
    EXPECT_EQ(pg().count_backends("usename = 'app'"), 1);
}

TEST_F(Timeouts, ServerConnectTimeoutFailsClientInsteadOfHanging) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP()
            << "pgbouncer 1.18 keeps the client waiting (it retries the login until query_wait_timeout)";
    SilentServer silent;
    ASSERT_GT(silent.port(), 0);
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.databases.clear();
    cfg.database("db", "host=127.0.0.1 port=" + std::to_string(silent.port()) + " dbname=postgres");
    cfg.set("server_connect_timeout", 1);
    cfg.set("server_login_retry", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    auto start = Clock::now();
    RawConn conn;
    ASSERT_TRUE(conn.connect_tcp(pooler.host(), pooler.port()));
    LoginOutcome login = raw_login(conn, kApp, "db", "", 8s);
    bool failed = !login.ready && !login.timed_out;
    std::string what = login.describe();
    if (login.ready) {  // a pooler that answers the login itself fails the first query instead
        RawQueryOutcome q = raw_query(conn, "select 1", 8s);
        failed = !q.error.sqlstate.empty() || q.closed;
        what = q.error.sqlstate + " " + q.error.message;
    }
    long long waited = elapsed_ms(start);
    EXPECT_TRUE(failed) << "the client got no error: " << what;
    EXPECT_LT(waited, 4000) << "the client waited " << waited << " ms for a server_connect_timeout of 1 s";
    // Server side: the pooler did connect, sent its startup packet and closed the connection itself.
    std::optional<std::string> seen = silent.accept_until_closed(3s);
    ASSERT_TRUE(seen.has_value()) << "no connection to the fake server, or the pooler never closed it";
    EXPECT_NE(seen->find("user"), std::string::npos) << "no startup packet before the close";
}

// Waiting clients get the server's own login error at once, and no second login is tried within
// server_login_retry.
void expect_login_error_passed_through(PoolguardProcess& pooler, TempPostgres& pg,
                                       const std::string& sqlstate, const std::string& text) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP()
            << "pgbouncer 1.18 sends 08P01 instead of the server's SQLSTATE, and makes later clients "
               "wait server_login_retry for their own login attempt";
    const std::string log_before = read_file(pg.log_path());
    for (int i = 0; i < 3; ++i) {
        SCOPED_TRACE("client " + std::to_string(i));
        auto start = Clock::now();
        RawConn conn;
        ASSERT_TRUE(conn.connect_tcp(pooler.host(), pooler.port()));
        LoginOutcome login = raw_login(conn, kApp, "db", "", 8s);
        std::string got_state = login.sqlstate, got_text = login.message;
        if (login.ready) {  // a pooler that answers the login itself fails the first query instead
            RawQueryOutcome q = raw_query(conn, "select 1", 8s);
            got_state = q.error.sqlstate;
            got_text = q.error.message;
        }
        EXPECT_EQ(got_state, sqlstate) << login.describe() << " / " << got_text;
        EXPECT_NE(got_text.find(text), std::string::npos) << got_text;
        EXPECT_LT(elapsed_ms(start), 2000) << "the error must come at once, not after query_wait_timeout";
    }
    EXPECT_EQ(pg.count_backends("usename = 'app'"), 0);
    const std::string log_after = read_file(pg.log_path());
    EXPECT_EQ(count_occurrences(log_after.substr(std::min(log_before.size(), log_after.size())), text), 1)
        << "three clients within server_login_retry must cause one server login attempt";
}

TEST_F(Timeouts, ServerLoginRetryGivesWaitingClientsTheWrongPasswordErrorAtOnce) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.databases.clear();
    cfg.database("db", pg().pooler_target("user=app password=wrong"));
    cfg.set("server_login_retry", 5);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    expect_login_error_passed_through(pooler, pg(), "28P01",
                                      "password authentication failed for user \"app\"");
}

TEST_F(Timeouts, ServerLoginRetryGivesWaitingClientsTheMissingDatabaseErrorAtOnce) {
    PoolerConfig cfg = base_config("transaction", 2);
    cfg.databases.clear();
    cfg.database("db", pg().pooler_target("", "no_such_db"));
    cfg.set("server_login_retry", 5);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    expect_login_error_passed_through(pooler, pg(), "3D000", "database \"no_such_db\" does not exist");
}

TEST_F(Timeouts, IdleTransactionTimeoutRollsBackTheTransactionOnTheServer) {
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE tmo_log")));
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("idle_transaction_timeout", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(Ok(c.exec("BEGIN")));
    ASSERT_TRUE(Ok(c.exec("insert into tmo_log values (1)")));
    EXPECT_EQ(pg().count_backends("usename = 'app' and state = 'idle in transaction'"), 1);
    EXPECT_TRUE(eventually(
        [&] { return pg().count_backends("usename = 'app' and state like 'idle in transaction%'") == 0; },
        5s));
    // The row was rolled back (not committed by the pooler), whether the server was reused or closed.
    EXPECT_EQ(pg().query_scalar("select count(*) from tmo_log"), "0");
    QueryResult r = c.exec("select 2", 5s);
    EXPECT_FALSE(r.ok());
    EXPECT_FALSE(r.timed_out) << r.describe();
    // The pool's only server is usable by the next client.
    PgConn next(pooler.dsn(kApp));
    ASSERT_TRUE(next.ok()) << next.connect_error();
    EXPECT_TRUE(Ok(next.exec("select 1", 5s)));
}

TEST_F(Timeouts, QueryTimeoutFreesThePoolForOtherClients) {
    PoolerConfig cfg = base_config("transaction", 1);
    cfg.set("query_timeout", 2);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());
    PgConn slow(pooler.dsn(kApp));
    ASSERT_TRUE(slow.ok()) << slow.connect_error();
    PgConn other(pooler.dsn(kApp));
    ASSERT_TRUE(other.ok()) << other.connect_error();
    auto start = Clock::now();
    ASSERT_TRUE(slow.send("select pg_sleep(30)"));
    ASSERT_TRUE(eventually(
        [&] { return pg().count_backends("query = 'select pg_sleep(30)' and state = 'active'") == 1; }, 3s));
    // The other client queues for the only server (briefly: pgbouncer counts waiting time against
    // query_timeout too) and gets it once the slow query was ended.
    std::this_thread::sleep_for(1500ms - std::chrono::milliseconds(elapsed_ms(start)));
    QueryResult r = other.exec("select 1", 8s);
    EXPECT_TRUE(r.ok()) << r.describe();
    EXPECT_LT(elapsed_ms(start), 4500);
    QueryResult s = slow.wait(5s);
    EXPECT_FALSE(s.ok());
    EXPECT_FALSE(s.timed_out) << s.describe();
    EXPECT_NE(s.error.find("query"), std::string::npos) << s.describe();
    EXPECT_NE(s.error.find("timeout"), std::string::npos) << s.describe();
    // pgbouncer 1.18 closes the server without a cancel, so its backend sleeps on; poolguard cancels it.
    if (!PoolguardProcess::testing_pgbouncer()) {
        EXPECT_TRUE(eventually(
            [&] { return pg().count_backends("query = 'select pg_sleep(30)' and state = 'active'") == 0; },
            3s));
    }
}

}  // namespace
}  // namespace itest
