// Owns the basic TLS integration tests (certificates from tls_helpers' Pki), PostgreSQL 15 with ssl=on, libpq
// sslmodes through poolguard (client and server side), verify-full host names, SSLRequest injection,
// GSSENCRequest, auth_type = cert, SCRAM-SHA-256-PLUS (channel_binding=require) and SHOW CLIENTS' tls column.
#include <gtest/gtest.h>

#include <csignal>
#include <string>

#include "fixtures.h"
#include "tls_helpers.h"

namespace itest {
namespace {

class Tls : public TlsPoolerTest {
  protected:
    static void SetUpTestSuite() { start_tls_server("tls", TempPostgresOptions{}); }

    // Clients: require with the pooler's certificate; servers: verify-full against the test CA.
    static PoolerConfig tls_config(const std::string& client_mode = "require") {
        PoolerConfig c = base_config("transaction", 2);
        c.database("wrongname", "host=localhost port=" + std::to_string(pg().port()) + " dbname=postgres");
        set_tls(c, client_mode);
        c.set("query_wait_timeout", 5);
        return c;
    }
    static std::string verify_full() { return "sslmode=verify-full sslrootcert=" + (*pki_)("ca.crt"); }
};

TEST_F(Tls, RequireServesTlsBothSidesAndRefusesPlainClients) {
    PoolguardProcess pooler(tls_config());
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp, "", "db", verify_full()));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_EQ(PQsslInUse(c.get()), 1);
    QueryResult r = c.exec("select ssl from pg_stat_ssl where pid = pg_backend_pid()");
    EXPECT_EQ(r.value(), "t") << r.describe();  // the pooler's server link is TLS too

    PgConn plain(pooler.dsn(kApp, "", "db", "sslmode=disable"));
    EXPECT_FALSE(plain.ok());
    EXPECT_NE(plain.connect_error().find("SSL required"), std::string::npos) << plain.connect_error();
    // The admin console too.
    PgConn admin(pooler.dsn(kApp, "", "pgbouncer", "sslmode=disable"));
    EXPECT_FALSE(admin.ok());
    EXPECT_NE(admin.connect_error().find("SSL required"), std::string::npos) << admin.connect_error();
}

TEST_F(Tls, PreferGetsTlsAndDisableStaysPlain) {
    PoolerConfig c = tls_config("prefer");
    c.set("admin_users", kApp);
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn tls(pooler.dsn(kApp, "", "db", "sslmode=prefer"));
    ASSERT_TRUE(tls.ok()) << tls.connect_error();
    EXPECT_EQ(PQsslInUse(tls.get()), 1);
    PgConn plain(pooler.dsn(kApp, "", "db", "sslmode=disable"));
    ASSERT_TRUE(plain.ok()) << plain.connect_error();
    EXPECT_EQ(PQsslInUse(plain.get()), 0);
    EXPECT_TRUE(Ok(plain.exec("select 1")));

    // SHOW CLIENTS: the tls column names protocol and cipher for the TLS client only.
    PgConn admin(pooler.dsn(kApp, "", "pgbouncer", "sslmode=require"));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    QueryResult rows = admin.exec("SHOW CLIENTS");
    ASSERT_TRUE(rows.ok()) << rows.describe();
    size_t tls_col = rows.columns.size();
    for (size_t i = 0; i < rows.columns.size(); ++i)
        if (rows.columns[i] == "tls") tls_col = i;
    ASSERT_LT(tls_col, rows.columns.size());
    int with_tls = 0, without = 0;
    for (const auto& row : rows.rows) {
        const std::string& v = row[tls_col];
        if (v.starts_with("TLSv1."))
            ++with_tls;
        else if (v.empty())
            ++without;
    }
    EXPECT_EQ(with_tls, 2);  // the prefer client and this admin session
    EXPECT_EQ(without, 1);
}

TEST_F(Tls, ServerVerifyFullChecksTheHostName) {
    PoolguardProcess pooler(tls_config());
    ASSERT_TRUE(pooler.start());
    // PostgreSQL's certificate names 127.0.0.1 only: through "localhost" it must not verify, and the client
    // gets the reason well before query_wait_timeout.
    const auto t0 = std::chrono::steady_clock::now();
    PgConn bad(pooler.dsn(kApp, "", "wrongname", verify_full()));
    EXPECT_FALSE(bad.ok() && Ok(bad.exec("select 1")));
    const std::string why = bad.ok() ? bad.exec("select 1").describe() : bad.connect_error();
    EXPECT_NE(why.find("certificate verify failed"), std::string::npos) << why;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(6));

    // verify-ca checks only the chain: the same server works.
    PoolerConfig ca = tls_config();
    ca.set("server_tls_sslmode", "verify-ca");
    PoolguardProcess pooler2(ca);
    ASSERT_TRUE(pooler2.start());
    PgConn good(pooler2.dsn(kApp, "", "wrongname", verify_full()));
    ASSERT_TRUE(good.ok()) << good.connect_error();
    EXPECT_EQ(good.exec("select ssl from pg_stat_ssl where pid = pg_backend_pid()").value(), "t");
}

TEST_F(Tls, ServerRequireRefusesAServerWithoutTls) {
    // A second pooler in front of the first one's plain side: poolguard with client TLS disabled answers
    // SSLRequest 'N', so server_tls_sslmode=require must fail the login and prefer must fall back.
    PoolguardProcess plain_pooler(base_config("transaction", 2));
    ASSERT_TRUE(plain_pooler.start());
    PoolerConfig c = base_config("transaction", 2);
    c.database("db", "host=127.0.0.1 port=" + std::to_string(plain_pooler.port()) + " dbname=db");
    c.set("server_tls_sslmode", "require");
    c.set("query_wait_timeout", 5);
    PoolguardProcess front(c);
    ASSERT_TRUE(front.start());
    PgConn refused(front.dsn(kApp));
    const std::string why = refused.ok() ? refused.exec("select 1").describe() : refused.connect_error();
    EXPECT_NE(why.find("server refused TLS"), std::string::npos) << why;

    c.set("server_tls_sslmode", "prefer");
    PoolguardProcess front2(c);
    ASSERT_TRUE(front2.start());
    PgConn fallback(front2.dsn(kApp));
    ASSERT_TRUE(fallback.ok()) << fallback.connect_error();
    EXPECT_TRUE(Ok(fallback.exec("select 1")));
}

TEST_F(Tls, BytesAfterSslRequestAreRefusedInClearText) {
    PoolguardProcess pooler(tls_config());
    ASSERT_TRUE(pooler.start());
    // SSLRequest immediately followed by a cleartext StartupMessage in one segment.
    const std::string got = raw_exchange(pooler.port(), kSslRequest + startup_packet());
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got[0], 'E') << "must not answer 'S' and then take the buffered bytes as TLS";
    EXPECT_NE(got.find("received unencrypted data after SSL request"), std::string::npos);
    EXPECT_NE(got.find("08P01"), std::string::npos);
}

TEST_F(Tls, GssEncRequestIsDeclined) {
    PoolguardProcess pooler(tls_config("prefer"));
    ASSERT_TRUE(pooler.start());
    const std::string got = raw_exchange(pooler.port(), kGssEncRequest, 1);
    EXPECT_EQ(got, "N");
    PgConn c(pooler.dsn(kApp, "", "db", "gssencmode=prefer sslmode=disable"));
    ASSERT_TRUE(c.ok()) << c.connect_error();
}

TEST_F(Tls, CertificateAuthentication) {
    PoolerConfig c = tls_config("verify-full");
    c.set("auth_type", "cert");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    const std::string cert = " sslcert=" + (*pki_)("app.crt") + " sslkey=" + (*pki_)("app.key");
    PgConn ok(pooler.dsn(kApp, "", "db", verify_full() + cert));
    ASSERT_TRUE(ok.ok()) << ok.connect_error();
    EXPECT_EQ(ok.exec("select current_user").value(), "app");
    // CN=app cannot log in as app2, and no certificate is no login.
    PgConn other(pooler.dsn(kApp2, "", "db", verify_full() + cert));
    EXPECT_FALSE(other.ok());
    EXPECT_NE(other.connect_error().find("certificate authentication failed"), std::string::npos)
        << other.connect_error();
    PgConn none(
        pooler.dsn(kApp, kAppPass, "db", verify_full() + " sslcert=/nonexistent sslkey=/nonexistent"));
    EXPECT_FALSE(none.ok());
}

TEST_F(Tls, ScramChannelBinding) {
    PoolerConfig c = tls_config();
    c.set("auth_type", "scram-sha-256");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn bound(pooler.dsn(kApp, kAppPass, "db", verify_full() + " channel_binding=require"));
    ASSERT_TRUE(bound.ok()) << bound.connect_error();
    EXPECT_TRUE(Ok(bound.exec("select 1")));
    PgConn unbound(pooler.dsn(kApp, kAppPass, "db", verify_full() + " channel_binding=disable"));
    ASSERT_TRUE(unbound.ok()) << unbound.connect_error();
    PgConn wrong(pooler.dsn(kApp, "nope", "db", verify_full() + " channel_binding=require"));
    EXPECT_FALSE(wrong.ok());
}

TEST_F(Tls, ReloadWithNewServerTlsSettingsReconnectsServers) {
    PoolerConfig c = tls_config("prefer");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    PgConn client(pooler.dsn(kApp, "", "db", "sslmode=disable"));
    ASSERT_TRUE(client.ok()) << client.connect_error();
    const std::string q = "select ssl from pg_stat_ssl where pid = pg_backend_pid()";
    EXPECT_EQ(client.exec(q).value(), "t");
    // server_tls_sslmode changes: the idle server is closed at the reload; the next one is plain TCP.
    c.set("server_tls_sslmode", "disable");
    ASSERT_TRUE(pooler.rewrite_config(c));
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    EXPECT_TRUE(eventually([&] { return client.exec(q).value() == "f"; }, std::chrono::seconds(5)));
    // A reload whose certificate file is unreadable is refused: TLS clients keep working with the old one.
    c.set("client_tls_cert_file", (*pki_)("missing.crt"));
    ASSERT_TRUE(pooler.rewrite_config(c));
    ASSERT_TRUE(pooler.send_signal(SIGHUP));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    PgConn after(pooler.dsn(kApp, "", "db", verify_full()));
    ASSERT_TRUE(after.ok()) << after.connect_error();
    EXPECT_EQ(PQsslInUse(after.get()), 1);
}

TEST_F(Tls, UnreadableCertificateRefusesStart) {
    PoolerConfig c = tls_config();
    c.set("client_tls_cert_file", (*pki_)("missing.crt"));
    PoolguardProcess pooler(c);
    auto status = pooler.run_until_exit();
    ASSERT_TRUE(status.has_value());
    EXPECT_NE(*status, 0);
    EXPECT_NE(pooler.output_contents().find("client_tls_cert_file"), std::string::npos)
        << pooler.output_contents();
}

}  // namespace
}  // namespace itest
