// Owns the TLS tests against a hostssl-only PostgreSQL 15 (issue 14): poolguard's client certificate to a
// `cert` HBA line (and the error without one), every libpq sslmode against every client_tls_sslmode, and
// the psycopg2, asyncpg (ssl context, direct TLS) and PgJDBC (sslmode=verify-full) clients.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <string>

#include "fixtures.h"
#include "tls_helpers.h"

namespace itest {
namespace {

class TlsClients : public TlsPoolerTest {
  protected:
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        // TLS only: app must present a certificate with CN=app, everyone else any TLS connection.
        o.hba_tcp_lines = {"hostssl all app 127.0.0.1/32 cert", "hostssl all all 127.0.0.1/32 trust"};
        start_tls_server("tls_clients", o, {{"ssl_ca_file", "ca.crt"}});
    }

    // Clients: `client_mode` with the pooler's certificate; servers: verify-full against the test CA with
    // app's certificate (PostgreSQL's `cert` line for app).
    static PoolerConfig config(const std::string& client_mode, const std::string& pool_mode = "session") {
        PoolerConfig c = base_config(pool_mode, 2);
        set_tls(c, client_mode);
        c.set("server_tls_key_file", (*pki_)("app.key"));
        c.set("server_tls_cert_file", (*pki_)("app.crt"));
        c.set("query_wait_timeout", 5);
        return c;
    }
    static std::string roots() { return " sslrootcert=" + (*pki_)("ca.crt"); }
    static std::string client_cert() {
        return " sslcert=" + (*pki_)("app.crt") + " sslkey=" + (*pki_)("app.key");
    }
};

const char* kServerSsl =
    "select ssl::text || ' ' || coalesce(client_dn, '') from pg_stat_ssl where pid = pg_backend_pid()";

TEST_F(TlsClients, PoolerPresentsItsClientCertificateToACertHbaLine) {
    PoolguardProcess pooler(config("prefer"));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp, "", "db", "sslmode=disable"));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_EQ(c.exec(kServerSsl).value(), "true /CN=app");
    // app2 has a plain hostssl line: the same certificate is presented, trust lets it in.
    PgConn c2(pooler.dsn(kApp2, "", "db", "sslmode=disable"));
    ASSERT_TRUE(c2.ok()) << c2.connect_error();
    EXPECT_EQ(c2.exec(kServerSsl).value(), "true /CN=app");
}

TEST_F(TlsClients, WithoutAClientCertificateTheServersRefusalReachesTheClient) {
    PoolerConfig c = config("prefer");
    c.set("server_tls_key_file", "");
    c.set("server_tls_cert_file", "");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    // PostgreSQL refuses the pooler's login (FATAL 28000); the client gets that error, not a timeout.
    const LoginOutcome no_cert = raw_login(pooler.host(), pooler.port(), kApp, "db", "");
    EXPECT_FALSE(no_cert.ready);
    EXPECT_EQ(no_cert.sqlstate, "28000") << no_cert.describe();
    EXPECT_NE(no_cert.message.find("requires a valid client certificate"), std::string::npos)
        << no_cert.describe();
    EXPECT_LT(no_cert.elapsed_ms, 4000);

    // hostssl only: a pooler that does not use TLS to the server has no HBA line at all.
    c.set("server_tls_sslmode", "disable");
    PoolguardProcess plain(c);
    ASSERT_TRUE(plain.start());
    const LoginOutcome no_tls = raw_login(plain.host(), plain.port(), kApp2, "db", "");
    EXPECT_FALSE(no_tls.ready);
    EXPECT_EQ(no_tls.sqlstate, "28000") << no_tls.describe();
    EXPECT_NE(no_tls.message.find("no encryption"), std::string::npos) << no_tls.describe();
}

// What a libpq client with `sslmode` gets from a pooler with client_tls_sslmode `pooler`: "plain", "tls" or
// "fail"; `cert`: the client presents app's certificate.
std::string expected(const std::string& pooler, const std::string& sslmode, bool cert) {
    const bool client_wants_tls = sslmode == "require" || sslmode == "verify-ca" || sslmode == "verify-full";
    if (pooler == "disable") return client_wants_tls ? "fail" : "plain";
    if (pooler == "allow" || pooler == "prefer")
        return sslmode == "disable" || sslmode == "allow" ? "plain" : "tls";
    if (sslmode == "disable") return "fail";
    if (pooler == "require") return "tls";
    return cert ? "tls" : "fail";  // verify-ca / verify-full want a client certificate
}

TEST_F(TlsClients, EveryLibpqSslmodeAgainstEveryClientTlsSslmode) {
    const std::vector<std::string> modes = {"disable", "allow",     "prefer",
                                            "require", "verify-ca", "verify-full"};
    for (const auto& pooler_mode : modes) {
        PoolguardProcess pooler(config(pooler_mode));
        ASSERT_TRUE(pooler.start()) << pooler_mode;
        for (const bool cert : {false, true}) {
            if (cert && pooler_mode.rfind("verify", 0) != 0) continue;
            for (const auto& sslmode : modes) {
                PgConn c(
                    pooler.dsn(kApp2, "", "db", "sslmode=" + sslmode + roots() + (cert ? client_cert() : "")),
                    5s);
                std::string got = !c.ok() ? "fail" : PQsslInUse(c.get()) == 1 ? "tls" : "plain";
                if (c.ok() && !Ok(c.exec("select 1"))) got = "fail";
                EXPECT_EQ(got, expected(pooler_mode, sslmode, cert))
                    << "client_tls_sslmode=" << pooler_mode << " sslmode=" << sslmode
                    << (cert ? " +cert" : "") << ": " << c.error_message();
            }
        }
    }
}

TEST_F(TlsClients, PlainClientsAreToldSslRequired) {
    for (const std::string mode : {"require", "verify-full"}) {
        PoolguardProcess pooler(config(mode));
        ASSERT_TRUE(pooler.start());
        const LoginOutcome plain = raw_login(pooler.host(), pooler.port(), kApp2, "db", "");
        EXPECT_FALSE(plain.ready);
        EXPECT_EQ(plain.sqlstate, "08P01") << mode << ": " << plain.describe();
        EXPECT_NE(plain.message.find("SSL required"), std::string::npos) << mode << ": " << plain.describe();
    }
}

RunResult run_tool(std::vector<std::string> argv, std::chrono::milliseconds timeout = 15s) {
    SpawnOptions o;
    o.argv = std::move(argv);
    const std::string out = make_temp_dir("poolguard_tls_tool") + "/out";
    o.output_path = out;
    RunResult r = run_command(o, timeout);
    remove_tree(out.substr(0, out.size() - 4));
    return r;
}

// Debian's python3 (the one with python3-psycopg2 / python3-asyncpg; a pyenv python3 on PATH has neither)
// can import `module`.
bool debian_python_has(const std::string& module) {
    return ::access("/usr/bin/python3", X_OK) == 0 &&
           run_tool({"/usr/bin/python3", "-c", "import " + module}).exit_code == 0;
}

const char* kPsycopg2 = R"X(
import sys, psycopg2
c = psycopg2.connect(sys.argv[1])
cur = c.cursor()
cur.execute("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
print("ssl_in_use=%s server_ssl=%s" % (c.info.ssl_in_use, cur.fetchone()[0]))
)X";

TEST_F(TlsClients, Psycopg2VerifyFullWithChannelBinding) {
    if (!debian_python_has("psycopg2"))
        GTEST_SKIP() << "python3-psycopg2 is not installed (scripts/deps installs it)";
    PoolerConfig c = config("require");
    c.set("auth_type", "scram-sha-256");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    const std::string dsn = "host=127.0.0.1 port=" + std::to_string(pooler.port()) +
                            " dbname=db user=app password=apppass sslmode=verify-full" + roots() +
                            // Beyond PgBouncer 1.25.2, which offers no SCRAM-SHA-256-PLUS.
                            (PoolguardProcess::testing_pgbouncer() ? "" : " channel_binding=require");
    RunResult r = run_tool({"/usr/bin/python3", "-c", kPsycopg2, dsn});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("ssl_in_use=True server_ssl=True"), std::string::npos) << r.output;
}

const char* kAsyncpg = R"X(
import sys, ssl, asyncio, asyncpg
async def probe(direct):
    ctx = ssl.create_default_context(cafile=sys.argv[2])
    ctx.set_alpn_protocols(["postgresql"])
    c = await asyncpg.connect(host="127.0.0.1", port=int(sys.argv[1]), user="app", password="apppass",
                              database="db", ssl=ctx, direct_tls=direct, timeout=5)
    v = await c.fetchval("select ssl from pg_stat_ssl where pid = pg_backend_pid()")
    so = c._transport.get_extra_info("ssl_object")
    print("direct=%s tls=%s server_ssl=%s" % (direct, so.version() if so else None, v))
    await c.close()
async def main():
    await probe(False)
    await probe(True)
asyncio.run(main())
)X";

TEST_F(TlsClients, AsyncpgWithAnSslContextAndDirectTls) {
    if (!debian_python_has("asyncpg"))
        GTEST_SKIP() << "python3-asyncpg is not installed (scripts/deps installs it)";
    PoolerConfig c = config("require");
    c.set("auth_type", "scram-sha-256");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    RunResult r =
        run_tool({"/usr/bin/python3", "-c", kAsyncpg, std::to_string(pooler.port()), (*pki_)("ca.crt")});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("direct=False tls=TLSv1.3 server_ssl=True"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("direct=True tls=TLSv1.3 server_ssl=True"), std::string::npos) << r.output;
}

const char* kJdbcProbe = R"X(
import java.sql.*;
public class Probe {
    public static void main(String[] a) throws Exception {
        try (Connection c = DriverManager.getConnection(a[0], "app", "apppass");
             Statement s = c.createStatement();
             ResultSet r = s.executeQuery("select ssl from pg_stat_ssl where pid = pg_backend_pid()")) {
            r.next();
            System.out.println("server_ssl=" + r.getBoolean(1));
        }
    }
}
)X";

TEST_F(TlsClients, PgJdbcSslVerifyFull) {
    const std::string jar = "/usr/share/java/postgresql.jar";
    // `java Probe.java` (the source launcher) needs a JDK's compiler, not just a JRE.
    if (::access("/usr/bin/java", X_OK) != 0 || ::access("/usr/bin/javac", X_OK) != 0 ||
        ::access(jar.c_str(), R_OK) != 0)
        GTEST_SKIP() << "a Java 17 JDK or PgJDBC (/usr/share/java/postgresql.jar) is missing: scripts/deps "
                        "installs openjdk-17-jdk-headless and libpostgresql-jdbc-java";
    PoolerConfig c = config("require");
    c.set("auth_type", "scram-sha-256");
    c.set("ignore_startup_parameters", "extra_float_digits");  // PgJDBC sends it, as with PgBouncer
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    const std::string src = pooler.dir() + "/Probe.java";
    ASSERT_TRUE(write_file(src, kJdbcProbe));
    const std::string url = "jdbc:postgresql://127.0.0.1:" + std::to_string(pooler.port()) +
                            "/db?ssl=true&sslmode=verify-full&sslrootcert=" + (*pki_)("ca.crt") +
                            "&sslcert=" + pooler.dir() + "/none.crt&connectTimeout=5";
    RunResult r =
        run_tool({"/usr/bin/java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", jar, src, url}, 30s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("server_ssl=true"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace itest
