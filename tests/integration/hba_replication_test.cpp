// Owns the integration tests of PgBouncer 1.25's logins: auth_type = hba (reject, trust, md5, scram, peer
// with auth_ident_file maps, hostssl), the admin console's peer login as pgbouncer, unknown databases after
// the password exchange, and replication connections (replication=database and physical pg_receivewal).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "fixtures.h"
#include "subprocess.h"

namespace itest {
namespace {

void write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    ::chmod(path.c_str(), 0644);
}

class HbaLogin : public PoolerTest {
  protected:
    void SetUp() override {
        PoolerTest::SetUp();
        dir_ = make_temp_dir("hba");
        ::chmod(dir_.c_str(), 0755);
    }
    void TearDown() override { remove_tree(dir_); }

    // auth_type = hba with the given rules (and ident maps); the server itself trusts TCP logins.
    PoolerConfig hba_config(const std::string& rules, const std::string& ident = "") {
        write(dir_ + "/hba.conf", rules);
        write(dir_ + "/users.lst", "app2\n");
        PoolerConfig c = base_config("transaction", 2);
        c.set("auth_type", "hba");
        c.set("auth_hba_file", dir_ + "/hba.conf");
        if (!ident.empty()) {
            write(dir_ + "/ident.conf", ident);
            c.set("auth_ident_file", dir_ + "/ident.conf");
        }
        return c;
    }
    std::string dir_;
};

TEST_F(HbaLogin, RulesPickTheMethodPerUserAndRejectAsPgbouncerDoes) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer 1.18 has no auth_hba_file";
    PoolguardProcess pooler(
        hba_config("# first match wins\n"
                   "host all nobody 127.0.0.1/32 reject\n"
                   "hostssl all app 127.0.0.1/32 trust\n"
                   "host db @users.lst 127.0.0.1 255.255.255.255 md5\n"
                   "hostnossl db app 127.0.0.0/8 scram-sha-256\n"));
    ASSERT_TRUE(pooler.start());

    LoginOutcome rejected = raw_login(pooler.host(), pooler.port(), "nobody", "db", "x");
    EXPECT_FALSE(rejected.ready) << rejected.describe();
    EXPECT_EQ(rejected.sqlstate, "08P01") << rejected.describe();
    EXPECT_EQ(rejected.message, "login rejected") << rejected.describe();
    EXPECT_EQ(rejected.auth_method, "") << "rejected before any password exchange";

    // The hostssl line never matches a plain connection: app falls through to scram-sha-256.
    LoginOutcome scram = raw_login(pooler.host(), pooler.port(), kApp, "db", kAppPass);
    EXPECT_TRUE(scram.ready) << scram.describe();
    EXPECT_EQ(scram.auth_method, "scram-sha-256");
    LoginOutcome scram_bad = raw_login(pooler.host(), pooler.port(), kApp, "db", "wrong");
    EXPECT_FALSE(scram_bad.ready) << scram_bad.describe();

    // app2 comes from the @file list; the line uses address + mask.
    LoginOutcome md5 = raw_login(pooler.host(), pooler.port(), kApp2, "db", kApp2Pass);
    EXPECT_TRUE(md5.ready) << md5.describe();
    EXPECT_EQ(md5.auth_method, "md5");
    LoginOutcome md5_bad = raw_login(pooler.host(), pooler.port(), kApp2, "db", "wrong");
    EXPECT_FALSE(md5_bad.ready) << md5_bad.describe();
    EXPECT_EQ(md5_bad.auth_method, "md5");

    PgConn c(pooler.dsn(kApp2, kApp2Pass));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_EQ(c.exec("select current_user").value(), kApp2);

    // No line for this user: refused without a password exchange, with PgBouncer 1.25's text.
    LoginOutcome none = raw_login(pooler.host(), pooler.port(), "postgres", "db", "x");
    EXPECT_FALSE(none.ready) << none.describe();
    EXPECT_EQ(none.sqlstate, "08P01") << none.describe();
    EXPECT_EQ(none.message, "no authentication method is found") << none.describe();
}

TEST_F(HbaLogin, TrustLineLetsInWithAnyPassword) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer 1.18 has no auth_hba_file";
    PoolguardProcess pooler(hba_config("host all app all trust\nhost all all all md5\n"));
    ASSERT_TRUE(pooler.start());
    LoginOutcome trust = raw_login(pooler.host(), pooler.port(), kApp, "db", "not the password");
    EXPECT_TRUE(trust.ready) << trust.describe();
    EXPECT_EQ(trust.auth_method, "trust");
}

TEST_F(HbaLogin, PeerLinesCompareTheSocketPeersOsUserOrItsIdentMap) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer 1.18 has no auth_hba_file";
    const std::string me = ::geteuid() == 0 ? "root" : std::string(::getenv("USER") ? ::getenv("USER") : "");
    if (me.empty()) GTEST_SKIP() << "unknown OS user";
    PoolguardProcess pooler(
        hba_config("local all app peer map=m\nlocal all all peer\nhost all all all peer\n",
                   "# map system database\nm " + me + " app\nm nobody-else all\n"));
    ASSERT_TRUE(pooler.start());
    PgConn mapped(pooler.unix_dsn(kApp));
    ASSERT_TRUE(mapped.ok()) << mapped.connect_error();
    EXPECT_EQ(mapped.exec("select current_user").value(), kApp);

    PgConn unmapped(pooler.unix_dsn(kApp2));  // `local all all peer`: the OS user is not app2
    EXPECT_FALSE(unmapped.ok());
    EXPECT_NE(unmapped.connect_error().find("unix socket login rejected"), std::string::npos)
        << unmapped.connect_error();

    PgConn over_tcp(pooler.dsn(kApp));  // peer on a host line: there is no peer to ask
    EXPECT_FALSE(over_tcp.ok());
    EXPECT_NE(over_tcp.connect_error().find("unix socket login rejected"), std::string::npos)
        << over_tcp.connect_error();
}

TEST_F(HbaLogin, UnusableLinesAreSkippedAndAMissingFileRefusesToStart) {
    if (PoolguardProcess::testing_pgbouncer()) GTEST_SKIP() << "pgbouncer 1.18 has no auth_hba_file";
    {
        PoolguardProcess pooler(hba_config("host all all all bogusmethod\nhost all all all trust\n"));
        ASSERT_TRUE(pooler.start());
        LoginOutcome login = raw_login(pooler.host(), pooler.port(), kApp, "db", "x");
        EXPECT_TRUE(login.ready) << login.describe();
    }
    PoolerConfig c = hba_config("host all all all trust\n");
    c.set("auth_hba_file", dir_ + "/missing.conf");
    PoolguardProcess pooler(c);
    auto status = pooler.run_until_exit();
    ASSERT_TRUE(status.has_value());
    EXPECT_NE(*status, 0);
}

class AdminPeer : public PoolerTest {};

TEST_F(AdminPeer, PgbouncerUserOverTheUnixSocketFromTheSameUidNeedsNoPassword) {
    PoolerConfig c = base_config("transaction", 2);
    c.set("auth_type", "scram-sha-256");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    ::chmod(pooler.dir().c_str(), 0755);  // the socket's directory, for the other OS user below
    PgConn admin(pooler.unix_dsn("pgbouncer", "", "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.connect_error();
    auto version = admin.exec("SHOW VERSION");
    ASSERT_TRUE(version.ok()) << version.describe();
    EXPECT_FALSE(version.value().empty());
    // An admin, not only a stats user.
    EXPECT_TRUE(admin.exec("RELOAD").ok());

    // Over TCP the user pgbouncer is an ordinary user (not in the auth_file: refused).
    PgConn tcp(pooler.dsn("pgbouncer", "x", "pgbouncer"));
    EXPECT_FALSE(tcp.ok());

    // From another OS user over the socket: the password exchange applies (and fails).
    if (::geteuid() == 0) {
        RunResult r = run_command(SpawnOptions{{"psql", "-X", "-w", "-At", "-c", "SHOW VERSION",
                                                pooler.unix_dsn("pgbouncer", "", "pgbouncer")},
                                               "",
                                               true},
                                  20s);
        EXPECT_NE(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find("password"), std::string::npos)
            << r.output;  // refused by auth, not the socket
    }
}

class UnknownDatabase : public PoolerTest {};

TEST_F(UnknownDatabase, IsRefusedOnlyAfterThePasswordExchange) {
    PoolerConfig c = base_config("transaction", 2);
    c.set("auth_type", "md5");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    LoginOutcome right = raw_login(pooler.host(), pooler.port(), kApp, "nodb", kAppPass);
    EXPECT_FALSE(right.ready) << right.describe();
    EXPECT_EQ(right.auth_method, "md5") << right.describe();
    EXPECT_NE(right.message.find("no such database: nodb"), std::string::npos) << right.describe();
    LoginOutcome wrong = raw_login(pooler.host(), pooler.port(), kApp, "nodb", "wrong");
    EXPECT_FALSE(wrong.ready) << wrong.describe();
    EXPECT_EQ(wrong.auth_method, "md5") << wrong.describe();
    EXPECT_EQ(wrong.message.find("no such database"), std::string::npos)
        << "a wrong password must not learn whether the database exists: " << wrong.describe();
    LoginOutcome nobody = raw_login(pooler.host(), pooler.port(), "nobody", "nodb", "x");
    EXPECT_EQ(nobody.auth_method, "md5") << nobody.describe();
    EXPECT_EQ(nobody.message.find("no such database"), std::string::npos) << nobody.describe();
}

class Replication : public PoolerTest {
  protected:
    static long long walsenders() {
        return server_->query_int("select count(*) from pg_stat_activity where backend_type = 'walsender'");
    }
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.settings = {"wal_level=logical", "max_wal_senders=10", "max_replication_slots=10"};
        start_server(o);
        if (!server_->ok()) return;
        {
            std::ofstream hba(server_->data_dir() + "/pg_hba.conf", std::ios::app);
            hba << "host replication all 127.0.0.1/32 trust\n";
        }
        PgConn admin(server_->admin_dsn());
        admin.exec("alter role app replication");
        admin.exec("select pg_reload_conf()");
    }
};

TEST_F(Replication, LogicalAndPhysicalConnectionsPassThroughInSessionMode) {
    PoolerConfig c = base_config("transaction", 2);
    c.database("replication", server_->pooler_target());
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());

    {
        PgConn logical(pooler.dsn(kApp, kAppPass, "db", "replication=database"));
        ASSERT_TRUE(logical.ok()) << logical.connect_error();
        auto id = logical.exec("IDENTIFY_SYSTEM");
        ASSERT_TRUE(id.ok()) << id.describe();
        ASSERT_EQ(id.columns.size(), 4u);
        EXPECT_EQ(id.value(0, 3), "postgres");
        EXPECT_EQ(walsenders(), 1);
    }
    // The walsender leaves with its client: a replication server is never handed to anyone else.
    EXPECT_TRUE(eventually([&] { return walsenders() == 0; }, 5s));

    // Ordinary clients of the same database keep their transaction pool.
    PgConn plain(pooler.dsn(kApp, kAppPass));
    ASSERT_TRUE(plain.ok()) << plain.connect_error();
    EXPECT_EQ(plain.exec("select 1").value(), "1");

    PgConn admin(pg().admin_dsn());
    admin.exec(
        "create table if not exists walgen(v int); insert into walgen select generate_series(1, 1000)");
    const std::string lsn = admin.exec("select pg_current_wal_flush_lsn()").value();
    const std::string wal = make_temp_dir("wal");
    RunResult r = run_command(
        SpawnOptions{{"pg_receivewal", "-d",
                      "host=127.0.0.1 port=" + std::to_string(pooler.port()) + " user=app password=apppass",
                      "-D", wal, "--endpos=" + lsn, "--no-loop", "-w"}},
        30s);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    RunResult ls = run_command(SpawnOptions{{"ls", wal}}, 5s);
    EXPECT_NE(ls.output.find("000000010000000000000001"), std::string::npos) << ls.output;
    remove_tree(wal);
    EXPECT_TRUE(eventually([&] { return walsenders() == 0; }, 5s));
}

TEST_F(Replication, InvalidReplicationValueIsRefused) {
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    RawConn conn;
    ASSERT_TRUE(conn.connect_tcp(pooler.host(), pooler.port()));
    LoginOutcome bad = raw_login(conn, kApp, "db", kAppPass, 10s, {{"replication", "sideways"}});
    EXPECT_FALSE(bad.ready) << bad.describe();
    EXPECT_EQ(bad.sqlstate, "08P01") << bad.describe();
    EXPECT_NE(bad.message.find("replication"), std::string::npos) << bad.describe();
}

class StartupDetails : public PoolerTest {};

TEST_F(StartupDetails, OptionsSetTrackedParametersAndRefuseOthers) {
    PoolerConfig c = base_config("transaction", 2);
    c.set("ignore_startup_parameters", "extra_float_digits");
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    {
        PgConn conn(pooler.dsn(kApp, kAppPass, "db",
                               "options='-c application_name=from\\\\ options --TimeZone=Europe/Paris "
                               "-cextra_float_digits=2'"));
        ASSERT_TRUE(conn.ok()) << conn.connect_error();
        EXPECT_EQ(conn.exec("show application_name").value(), "from options");
        EXPECT_EQ(conn.exec("show timezone").value(), "Europe/Paris");
    }
    {
        // A parameter of its own in the packet wins over options, as in PostgreSQL.
        PgConn conn(pooler.dsn(kApp, kAppPass, "db", "application_name=own options='-c application_name=x'"));
        ASSERT_TRUE(conn.ok()) << conn.connect_error();
        EXPECT_EQ(conn.exec("show application_name").value(), "own");
    }
    PgConn other(pooler.dsn(kApp, kAppPass, "db", "options='-c work_mem=8MB'"));
    EXPECT_FALSE(other.ok());
    EXPECT_NE(other.connect_error().find("unsupported startup parameter in options: work_mem"),
              std::string::npos)
        << other.connect_error();
    PgConn bad(pooler.dsn(kApp, kAppPass, "db", "options='-X'"));
    EXPECT_FALSE(bad.ok());
    EXPECT_NE(bad.connect_error().find("only '-c config=val' and '--config=val' are allowed"),
              std::string::npos)
        << bad.connect_error();
}

TEST_F(StartupDetails, StartupPacketLargerThanPktBufIsAccepted) {
    PoolerConfig c = base_config("transaction", 2);
    c.set("pkt_buf", 1024);
    PoolguardProcess pooler(c);
    ASSERT_TRUE(pooler.start());
    RawConn conn;
    ASSERT_TRUE(conn.connect_tcp(pooler.host(), pooler.port()));
    const std::string long_name(3000, 'a');  // the packet is about 3 KB, three times pkt_buf
    LoginOutcome login = raw_login(conn, kApp, "db", kAppPass, 10s, {{"application_name", long_name}});
    EXPECT_TRUE(login.ready) << login.describe();
}

class EquivalentParameters : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        TempPostgresOptions o;
        o.settings = {"log_statement=all"};
        start_server(o);
    }
    static size_t count(const std::string& text, const std::string& what) {
        size_t n = 0;
        for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
            ++n;
        return n;
    }
};

TEST_F(EquivalentParameters, ADifferentlySpelledValueIsSetOncePerServerNotPerTransaction) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    const std::string marker = "equivalent-" + std::to_string(::getpid());
    PgConn iso(pooler.dsn(kApp, kAppPass, "db", "options='-c DateStyle=iso' application_name=" + marker));
    ASSERT_TRUE(iso.ok()) << iso.connect_error();
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(iso.exec("select 1").ok());
    EXPECT_EQ(iso.exec("show datestyle").value(), "ISO, MDY");
    const std::string log = pg().log_tail(200000);
    EXPECT_EQ(count(log, "SET DateStyle = 'iso'"), 1u)
        << "one SET teaches poolguard that 'iso' is 'ISO, MDY'";

    // Another client's different value on the same (only) server is still applied, and back again.
    PgConn german(pooler.dsn(kApp2, kApp2Pass, "db", "options='-c DateStyle=German'"));
    ASSERT_TRUE(german.ok()) << german.connect_error();
    EXPECT_EQ(german.exec("show datestyle").value(), "German, DMY");
    const std::string again = iso.exec("show datestyle").value();
    EXPECT_EQ(again.rfind("ISO,", 0), 0u) << again;  // SET DateStyle = 'iso' again after German
    EXPECT_EQ(german.exec("show datestyle").value(), "German, DMY");
}

}  // namespace
}  // namespace itest
