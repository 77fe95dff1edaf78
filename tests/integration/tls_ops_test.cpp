// Owns the TLS operations tests (issue 14) against a hostssl-only PostgreSQL 15: certificates rotated and
// reloaded under a pgbench load, stalled handshakes (clients and servers) and unverifiable servers within
// their timeouts, admin console, cancel requests and direct TLS (ALPN), and admin SET of TLS settings.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <filesystem>
#include <string>
#include <thread>

#include "fixtures.h"
#include "tls_helpers.h"

namespace itest {
namespace {

namespace fs = std::filesystem;

class TlsOps : public TlsPoolerTest {
  protected:
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.hba_tcp_lines = {"hostssl all all 127.0.0.1/32 trust"};
        start_tls_server("tls_ops", o);
    }

    // Clients: `client_mode` with the pooler's certificate (its own copy in `dir`, to rotate); servers:
    // verify-full against the test CA. app2 is an admin.
    static PoolerConfig config(const std::string& client_mode, const std::string& key = (*pki_)("pooler.key"),
                               const std::string& cert = (*pki_)("pooler.crt")) {
        PoolerConfig c = base_config("transaction", 4);
        c.set("client_tls_sslmode", client_mode);
        c.set("client_tls_key_file", key);
        c.set("client_tls_cert_file", cert);
        c.set("server_tls_sslmode", "verify-full");
        c.set("server_tls_ca_file", (*pki_)("ca.crt"));
        c.set("query_wait_timeout", 10);
        c.set("admin_users", kApp2);
        return c;
    }
    static std::string verify_full() { return "sslmode=verify-full sslrootcert=" + (*pki_)("ca.crt"); }
};

// Issues a pooler certificate with `serial` and moves it over `key`/`cert` (rename: a reload never reads a
// half-written file).
bool rotate(Pki& pki, long serial, const std::string& key, const std::string& cert) {
    if (!pki.issue("next", "localhost", kPoolerCertExt, serial)) return false;
    std::error_code ec;
    fs::rename(pki("next.key"), key, ec);
    if (!ec) fs::rename(pki("next.crt"), cert, ec);
    return !ec;
}

long serial_seen(const PoolguardProcess& pooler, const std::string& extra) {
    PgConn c(pooler.dsn(kApp, "", "db", extra));
    if (!c.ok() || !Ok(c.exec("select 1"))) return -1;
    return peer_certificate_serial(c.get());
}

TEST_F(TlsOps, CertificatesRotatedUnderLoadWithSighupAndReload) {
    const std::string key = (*pki_)("rot.key"), cert = (*pki_)("rot.crt");
    ASSERT_TRUE(rotate(*pki_, 200, key, cert));
    PoolguardProcess pooler(config("require", key, cert));
    ASSERT_TRUE(pooler.start());
    PgConn session(pooler.dsn(kApp, "", "db", verify_full()));
    ASSERT_TRUE(session.ok()) << session.connect_error();
    EXPECT_EQ(peer_certificate_serial(session.get()), 200);
    PgConn admin(pooler.dsn(kApp2, "", "pgbouncer", verify_full()));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();

    ASSERT_TRUE(write_file(pooler.dir() + "/select.sql", "select 1;\n"));
    auto bench = [&](bool reconnect) {
        std::vector<std::string> args = {
            "-h", pooler.host(), "-p", std::to_string(pooler.port()), "-U", kApp, "-n", "-c", "2", "-j", "1",
            "-T", "3",           "-f", pooler.dir() + "/select.sql"};
        if (reconnect) args.push_back("-C");  // every transaction a new TLS connection
        args.push_back("dbname=db " + verify_full());
        return run_pgbench(args, 30s);
    };
    PgbenchResult fresh, kept;
    std::thread t1([&] { fresh = bench(true); });
    std::thread t2([&] { kept = bench(false); });

    std::this_thread::sleep_for(800ms);
    EXPECT_TRUE(rotate(*pki_, 201, key, cert));
    EXPECT_TRUE(pooler.send_signal(SIGHUP));
    EXPECT_TRUE(eventually([&] { return serial_seen(pooler, verify_full()) == 201; }, 3s));
    EXPECT_TRUE(rotate(*pki_, 202, key, cert));
    EXPECT_TRUE(Ok(admin.exec("RELOAD")));
    EXPECT_EQ(serial_seen(pooler, verify_full()), 202);  // RELOAD answers after the new files are in force
    t1.join();
    t2.join();

    for (const PgbenchResult* r : {&fresh, &kept}) {
        EXPECT_EQ(r->exit_code, 0) << r->describe();
        EXPECT_GT(r->processed, 0) << r->describe();
        EXPECT_LE(r->failed, 0) << r->describe();
        EXPECT_EQ(r->aborted_clients, 0) << r->describe();
    }
    // The session opened before the rotations keeps its TLS session (and certificate).
    EXPECT_TRUE(Ok(session.exec("select 1")));
    EXPECT_EQ(peer_certificate_serial(session.get()), 200);
    EXPECT_TRUE(Ok(admin.exec("SHOW VERSION")));
}

TEST_F(TlsOps, StalledHandshakesAreCutAtClientLoginTimeoutWithoutBlockingOthers) {
    PoolerConfig c = config("require");
    c.set("client_login_timeout", 2);
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    // Stalls after SSLRequest's 'S', inside a ClientHello, and in a direct-TLS ClientHello.
    std::vector<std::unique_ptr<TlsRawConn>> stalled;
    for (int i = 0; i < 9; ++i) {
        auto s = std::make_unique<TlsRawConn>();
        ASSERT_TRUE(s->connect(pooler.port(), 6s));
        if (i % 3 != 2) {
            ASSERT_EQ(s->ssl_request(), 'S');
        }
        if (i % 3 != 0) {
            ASSERT_TRUE(s->send(std::string("\x16\x03\x01\x02\x00\x01", 6)));  // a record begun
        }
        stalled.push_back(std::move(s));
    }
    const auto t0 = std::chrono::steady_clock::now();
    PgConn other(pooler.dsn(kApp, "", "db", verify_full()));
    ASSERT_TRUE(other.ok()) << other.connect_error();
    EXPECT_TRUE(Ok(other.exec("select 1")));
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "a stalled handshake delayed another client";
    for (auto& s : stalled)
        EXPECT_TRUE(s->wait_closed()) << "a stalled handshake outlived client_login_timeout";
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_LT(waited, 5s);
    EXPECT_TRUE(Ok(other.exec("select 1")));
}

TEST_F(TlsOps, ServerWhoseCertificateDoesNotVerifyFailsWithinServerConnectTimeout) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP() << "beyond PgBouncer 1.25.2: it logs the handshake error and keeps the client waiting "
                        "until query_wait_timeout";
    PoolerConfig c = config("prefer");
    c.set("server_tls_sslmode", "verify-ca");
    c.set("server_tls_ca_file", (*pki_)("ca2.crt"));  // not the CA that signed PostgreSQL's certificate
    c.set("server_connect_timeout", 2);
    c.set("query_wait_timeout", 20);
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    const LoginOutcome out = raw_login(pooler.host(), pooler.port(), kApp, "db", "", 15s);
    EXPECT_FALSE(out.ready);
    EXPECT_NE(out.message.find("certificate verify failed"), std::string::npos) << out.describe();
    EXPECT_LT(out.elapsed_ms, 4000) << out.describe();
    // Other pools are not held up: the admin console answers.
    PgConn admin(pooler.dsn(kApp2, "", "pgbouncer", verify_full()));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    EXPECT_TRUE(Ok(admin.exec("SHOW POOLS")));
}

// A TCP listener on 127.0.0.1 that answers each SSLRequest with 'S' and then says nothing: a server stalled
// in its TLS handshake (a fault, like tcp_relay's stall; the bytes before it are PostgreSQL's own).
class StalledTlsServer {
  public:
    StalledTlsServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        socklen_t len = sizeof a;
        if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0 ||
            ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
            return;
        port_ = ntohs(a.sin_port);
        thread_ = std::thread([this] {
            while (!stop_.load()) {
                pollfd p{fd_, POLLIN, 0};
                if (::poll(&p, 1, 50) != 1) continue;
                const int c = ::accept(fd_, nullptr, nullptr);
                if (c < 0) continue;
                char req[8];
                timeval tv{2, 0};
                ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                if (::recv(c, req, sizeof req, MSG_WAITALL) == 8) (void)!::send(c, "S", 1, MSG_NOSIGNAL);
                accepted_.push_back(c);
            }
        });
    }
    ~StalledTlsServer() {
        stop_.store(true);
        if (thread_.joinable()) thread_.join();
        for (int c : accepted_)
            ::close(c);
        if (fd_ >= 0) ::close(fd_);
    }
    int port() const { return port_; }

  private:
    int fd_ = -1;
    int port_ = 0;
    std::atomic<bool> stop_{false};
    std::vector<int> accepted_;  // touched by the thread only until it is joined
    std::thread thread_;
};

TEST_F(TlsOps, ServerStalledInTheHandshakeFailsWithinServerConnectTimeout) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP() << "beyond PgBouncer 1.25.2: it keeps the client waiting (past 15 s here) until "
                        "query_wait_timeout";
    StalledTlsServer stalled;
    ASSERT_GT(stalled.port(), 0);
    PoolerConfig c = config("prefer");
    c.database("stalled", "host=127.0.0.1 port=" + std::to_string(stalled.port()) + " dbname=postgres");
    c.set("server_connect_timeout", 1);
    c.set("query_wait_timeout", 20);
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    LoginOutcome out;
    std::thread waiting([&] { out = raw_login(pooler.host(), pooler.port(), kApp, "stalled", "", 15s); });
    // Meanwhile the other database's clients are served.
    std::this_thread::sleep_for(200ms);
    PgConn other(pooler.dsn(kApp, "", "db", verify_full()));
    EXPECT_TRUE(other.ok()) << other.connect_error();
    EXPECT_TRUE(Ok(other.exec("select 1")));
    waiting.join();
    EXPECT_FALSE(out.ready);
    EXPECT_NE(out.message.find("server_connect_timeout"), std::string::npos) << out.describe();
    EXPECT_LT(out.elapsed_ms, 4000) << out.describe();
    EXPECT_GE(out.elapsed_ms, 900) << out.describe();
}

TEST_F(TlsOps, AdminConsoleAndCancelRequestsOverTls) {
    PoolguardProcess pooler(config("require"));
    ASSERT_TRUE(pooler.start());
    PgConn admin(pooler.dsn(kApp2, "", "pgbouncer", verify_full()));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    EXPECT_EQ(PQsslInUse(admin.get()), 1);
    EXPECT_TRUE(Ok(admin.exec("SHOW VERSION")));

    // libpq 15 sends the CancelRequest in plain text for a TLS session: accepted under require.
    PgConn busy(pooler.dsn(kApp, "", "db", verify_full()));
    ASSERT_TRUE(busy.ok()) << busy.connect_error();
    ASSERT_TRUE(busy.send("select pg_sleep(20)"));
    std::this_thread::sleep_for(200ms);
    std::string why;
    ASSERT_TRUE(busy.cancel(&why)) << why;
    QueryResult r = busy.wait(8s);
    EXPECT_EQ(r.sqlstate, "57014") << r.describe();
    EXPECT_LT(r.elapsed_ms, 5000);

    // A CancelRequest inside TLS (what libpq 17 sends).
    TlsRawConn victim;
    ASSERT_TRUE(victim.connect(pooler.port(), 10s));
    ASSERT_EQ(victim.ssl_request(), 'S');
    ASSERT_TRUE(victim.handshake((*pki_)("ca.crt"))) << victim.error();
    ASSERT_TRUE(victim.login(kApp, "db")) << victim.error();
    ASSERT_TRUE(victim.send(RawConn::message('Q', std::string("select pg_sleep(20)") + '\0')));
    std::this_thread::sleep_for(200ms);
    TlsRawConn canceller;
    ASSERT_TRUE(canceller.connect(pooler.port()));
    ASSERT_EQ(canceller.ssl_request(), 'S');
    ASSERT_TRUE(canceller.handshake((*pki_)("ca.crt"))) << canceller.error();
    ASSERT_TRUE(canceller.send(cancel_request(victim.backend_pid(), victim.backend_key())));
    EXPECT_TRUE(canceller.wait_closed());
    std::string sqlstate;
    while (auto m = victim.read_message()) {
        if (m->type == 'E') sqlstate = parse_error_fields(m->payload).sqlstate;
        if (m->type == 'Z') break;
    }
    EXPECT_EQ(sqlstate, "57014");
}

TEST_F(TlsOps, DirectTlsWithAlpnForDatabasesAndTheAdminConsole) {
    PoolguardProcess pooler(config("require"));
    ASSERT_TRUE(pooler.start());
    for (const std::string db : {"db", "pgbouncer"}) {
        TlsRawConn direct;  // PostgreSQL 17's sslnegotiation=direct: a ClientHello first, ALPN postgresql
        ASSERT_TRUE(direct.connect(pooler.port()));
        ASSERT_TRUE(direct.handshake((*pki_)("ca.crt"), {"postgresql"})) << direct.error();
        EXPECT_EQ(direct.alpn(), "postgresql");
        ASSERT_TRUE(direct.login(db == "db" ? kApp : kApp2, db)) << direct.error();
        const auto rows = direct.query(db == "db" ? "select 42" : "SHOW VERSION");
        EXPECT_TRUE(direct.last_error().sqlstate.empty()) << direct.last_error().message;
        ASSERT_EQ(rows.size(), 1u);
        if (db == "db") {
            EXPECT_EQ(rows[0], "42");
        }
    }
    // Without ALPN (or with only other protocols) a direct TLS connection is refused, as PostgreSQL 17 does.
    for (const auto& alpn : {std::vector<std::string>{}, std::vector<std::string>{"http/1.1"}}) {
        if (alpn.empty() && PoolguardProcess::testing_pgbouncer()) continue;  // 1.25.2 serves it without ALPN
        TlsRawConn bad;
        ASSERT_TRUE(bad.connect(pooler.port()));
        const bool shook = bad.handshake((*pki_)("ca.crt"), alpn);
        EXPECT_FALSE(shook && bad.login(kApp, "db")) << "direct TLS without ALPN postgresql was served";
    }
}

TEST_F(TlsOps, AdminSetOfTlsSettingsValidatesLikeAReload) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP()
            << "beyond PgBouncer 1.25.2: it stores the value and only sends NOTICE \"TLS settings could "
               "not be applied, still using old configuration\"";
    PoolerConfig c = config("prefer");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn admin(pooler.dsn(kApp2, "", "pgbouncer", verify_full()));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    auto shown = [&](const std::string& key) {
        QueryResult r = admin.exec("SHOW CONFIG");
        for (const auto& row : r.rows)
            if (!row.empty() && row[0] == key) return row[1] + " " + (row.size() > 3 ? row[3] : "");
        return std::string("<absent>");
    };
    EXPECT_EQ(shown("client_tls_sslmode"), "prefer yes");
    // Refused, naming the setting: an unreadable file, a mode without the file it needs, a bad value.
    struct Case {
        std::string key, value, named;
    };
    for (const Case& k : {Case{"client_tls_cert_file", "/nonexistent/pooler.crt", "client_tls_cert_file"},
                          Case{"client_tls_key_file", (*pki_)("app.key"), "client_tls_key_file"},
                          Case{"client_tls_sslmode", "verify-full", "client_tls_ca_file"},
                          Case{"client_tls_sslmode", "bogus", "client_tls_sslmode"},
                          Case{"client_tls_protocols", "tlsv9", "client_tls_protocols"},
                          Case{"server_tls_ca_file", "/nonexistent/ca.crt", "server_tls_ca_file"},
                          Case{"server_tls_cert_file", (*pki_)("app.crt"), "server_tls_key_file"}}) {
        const std::string before = shown(k.key);
        QueryResult r = admin.exec("SET " + k.key + " = '" + k.value + "'");
        EXPECT_FALSE(r.ok()) << "SET " << k.key << " = " << k.value << " was accepted";
        EXPECT_NE(r.error.find(k.named), std::string::npos) << k.key << ": " << r.describe();
        EXPECT_EQ(shown(k.key), before) << k.key;
    }
    // Nothing was downgraded: TLS still works with the old files and plain clients are still allowed.
    PgConn tls(pooler.dsn(kApp, "", "db", verify_full()));
    ASSERT_TRUE(tls.ok()) << tls.connect_error();
    EXPECT_EQ(peer_certificate_serial(tls.get()), 115);
    PgConn plain(pooler.dsn(kApp, "", "db", "sslmode=disable"));
    EXPECT_TRUE(plain.ok()) << plain.connect_error();

    // A SET it can honour applies to new connections at once.
    EXPECT_TRUE(Ok(admin.exec("SET client_tls_sslmode = 'require'")));
    EXPECT_EQ(shown("client_tls_sslmode"), "require yes");
    PgConn refused(pooler.dsn(kApp, "", "db", "sslmode=disable"));
    EXPECT_FALSE(refused.ok());
    EXPECT_NE(refused.connect_error().find("SSL required"), std::string::npos) << refused.connect_error();
    PgConn still(pooler.dsn(kApp, "", "db", verify_full()));
    EXPECT_TRUE(still.ok()) << still.connect_error();
}

}  // namespace
}  // namespace itest
