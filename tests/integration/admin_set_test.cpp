// Owns the integration tests of the admin console's SET (issue 13): every parameter the parameter table
// marks changeable at run time is SET to a valid other value and SHOW CONFIG shows it (a sample is checked
// to take effect); every other one is refused and keeps its value.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "config/param_table.h"
#include "fixtures.h"

namespace itest {
namespace {

namespace params = poolguard::config::params;
using params::ValueKind;

class AdminSet : public PoolerTest {};

std::map<std::string, std::pair<std::string, std::string>> show_config(PgConn& admin) {
    std::map<std::string, std::pair<std::string, std::string>> out;  // key -> (value, changeable)
    auto r = admin.exec("SHOW CONFIG");
    EXPECT_TRUE(Ok(r));
    for (const auto& row : r.rows)
        if (row.size() >= 4) out[row[0]] = {row[1], row[3]};
    return out;
}

// Values for the settings whose kind alone does not give a valid other value (names, enums, paths, SQL,
// lists). "" means: the current value (the SET path is exercised, the value cannot usefully change here).
std::optional<std::string> special_value(const std::string& name, const PoolguardProcess& p) {
    static const std::map<std::string, std::string> kValues = {
        {"pool_mode", "statement"},
        {"auth_type", "md5"},
        {"logfile", "@dir/set.log"},
        {"auth_file", "@userlist"},
        {"auth_hba_file", ""},
        {"auth_ident_file", ""},
        {"auth_ldap_options", ""},
        {"auth_user", "app2"},
        {"auth_query", "SELECT usename, passwd FROM pg_shadow WHERE usename=$1"},
        {"auth_dbname", "db"},
        {"conffile", "@dir/other.ini"},
        {"service_name", "svc13"},
        {"job_name", "job13"},
        {"syslog_ident", "ident13"},
        {"syslog_facility", "local2"},
        {"admin_users", "app,app2"},  // app stays an admin: the test goes on with it
        {"stats_users", "app2"},
        {"server_reset_query", "RESET ALL"},
        {"server_check_query", "select 1"},
        {"ignore_startup_parameters", "extra_float_digits,geqo"},
        {"track_extra_parameters", "IntervalStyle,search_path"},
        {"resolv_conf", ""},
        {"client_tls_sslmode", ""},  // other modes need key files (tests/integration/tls_test.cpp)
        {"client_tls_key_file", ""},
        {"client_tls_cert_file", ""},
        {"client_tls_ca_file", ""},
        {"client_tls_protocols", "tlsv1.2,tlsv1.3"},
        {"client_tls_ciphers", "HIGH"},
        {"client_tls_ecdhcurve", "prime256v1"},
        {"client_tls_dheparams", "legacy"},
        {"server_tls_sslmode", "allow"},
        {"server_tls_ca_file", ""},
        {"server_tls_key_file", ""},
        {"server_tls_cert_file", ""},
        {"server_tls_protocols", "tlsv1.2,tlsv1.3"},
        {"server_tls_ciphers", "HIGH"},
        {"client_tls13_ciphers", "TLS_AES_256_GCM_SHA384"},
        {"server_tls13_ciphers", "TLS_AES_256_GCM_SHA384"},
        {"respond", "off"},
        {"respond_terminate_idle", "on"},
        {"respond_cancel_long", "off"},
        {"respond_end_leaks", "dry-run"},
    };
    auto it = kValues.find(name);
    if (it == kValues.end()) return std::nullopt;
    std::string v = it->second;
    if (v.starts_with("@dir/")) v = p.dir() + v.substr(4);
    if (v == "@userlist") v = p.userlist_path();
    return v;
}

std::string format_double(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", v);
    return buf;
}

// A valid value other than `current` for `spec`, as SET takes it; `shown` is what SHOW CONFIG should show.
bool pick_value(const params::ParamSpec& spec, const std::string& current, const PoolguardProcess& p,
                std::string& value, std::string& shown) {
    const std::string name(spec.name);
    if (auto v = special_value(name, p)) {
        value = shown = v->empty() ? current : *v;
        return true;
    }
    switch (spec.kind) {
        case ValueKind::kBool:
            value = shown = current == "1" ? "0" : "1";
            return true;
        case ValueKind::kInt:
        case ValueKind::kIntOrBool: {
            const long long cur = std::stoll(current);
            const long long next = cur + 1 <= spec.max ? cur + 1 : cur - 1;
            value = shown = std::to_string(next);
            return true;
        }
        case ValueKind::kDuration: {
            const double cur = std::stod(current);
            value = shown = std::to_string(static_cast<long long>(std::floor(cur)) + 1);
            return true;
        }
        case ValueKind::kDouble: {
            const double mid = (spec.real_min + spec.real_max) / 2;
            value = shown = format_double(mid);
            return true;
        }
        default:
            return false;
    }
}

TEST_F(AdminSet, EveryChangeableParameterIsSetAndShown) {
    auto cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.error_message();
    const auto before = show_config(admin);
    int set_count = 0;
    std::vector<std::string> unpicked;
    for (const auto* table : {&params::pgbouncer_params(), &params::poolguard_params()}) {
        for (const auto& spec : *table) {
            const std::string name(spec.name);
            if (!params::changeable_at_runtime(name)) continue;
            auto it = before.find(name);
            if (it == before.end()) {
                if (!PoolguardProcess::testing_pgbouncer())
                    ADD_FAILURE() << name << " missing from SHOW CONFIG";
                continue;
            }
            EXPECT_EQ(it->second.second, "yes") << name << ": SHOW CONFIG's changeable column";
            std::string value, shown;
            if (!pick_value(spec, it->second.first, p, value, shown)) {
                unpicked.push_back(name);
                continue;
            }
            auto r = admin.exec("SET " + name + " = " + sql_literal(value));
            EXPECT_TRUE(Ok(r)) << "SET " << name << " = " << value;
            if (!r.ok()) continue;
            ++set_count;
            const auto after = show_config(admin);
            const auto shown_now = after.count(name) ? after.at(name).first : "<missing>";
            EXPECT_EQ(shown_now, shown) << "SHOW CONFIG after SET " << name << " = " << value;
        }
    }
    EXPECT_TRUE(unpicked.empty()) << "no test value for: " << ::testing::PrintToString(unpicked);
    EXPECT_GT(set_count, 60);
    // The console still answers (admin_users kept app), and a client still gets through.
    EXPECT_TRUE(Ok(admin.exec("SHOW POOLS")));
}

TEST_F(AdminSet, ASampleTakesEffect) {
    auto cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    cfg.set("log_stats", "0").set("stats_period", 1);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.error_message();

    // query_timeout: a long query is cut off from the next query on.
    PgConn c(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(c.exec("SELECT 1")));
    ASSERT_TRUE(Ok(admin.exec("SET query_timeout = 1")));
    auto slow = c.exec("SELECT pg_sleep(4)", 10s);
    EXPECT_FALSE(slow.ok()) << slow.describe();
    EXPECT_LT(slow.elapsed_ms, 3500) << slow.describe();
    ASSERT_TRUE(Ok(admin.exec("SET query_timeout = 0")));

    // default_pool_size: SHOW DATABASES reports the new size.
    ASSERT_TRUE(Ok(admin.exec("SET default_pool_size = 7")));
    auto dbs = admin.exec("SHOW DATABASES");
    ASSERT_TRUE(Ok(dbs));
    int name_col = -1, size_col = -1;
    for (size_t i = 0; i < dbs.columns.size(); ++i) {
        if (dbs.columns[i] == "name") name_col = static_cast<int>(i);
        if (dbs.columns[i] == "pool_size") size_col = static_cast<int>(i);
    }
    ASSERT_GE(name_col, 0);
    ASSERT_GE(size_col, 0);
    bool seen = false;
    for (const auto& row : dbs.rows)
        if (row[name_col] == "db") {
            EXPECT_EQ(row[size_col], "7");
            seen = true;
        }
    EXPECT_TRUE(seen);

    // log_stats: the stats line starts to appear.
    EXPECT_EQ(p.log_contents().find("stats: "), std::string::npos);
    ASSERT_TRUE(Ok(admin.exec("SET log_stats = 1")));
    EXPECT_TRUE(p.wait_for_log("stats: ", 5s)) << p.log_contents();
}

TEST_F(AdminSet, TheConsoleIsNotClosedByClientIdleTimeout) {
    // Found by EveryChangeableParameterIsSetAndShown under ASan: after SET client_idle_timeout = 1 the
    // console itself was closed a second after its login. PgBouncer 1.25.2 leaves admin consoles alone.
    auto cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    cfg.set("client_idle_timeout", 1);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(Ok(admin.exec("SHOW VERSION")));
    PgConn client(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(client.exec("SELECT 1")));
    std::this_thread::sleep_for(2500ms);
    EXPECT_TRUE(Ok(admin.exec("SHOW VERSION")));
    EXPECT_FALSE(client.exec("SELECT 1").ok()) << "an ordinary idle client is closed";
}

TEST_F(AdminSet, ParametersFixedAtStartAreRefusedAndKept) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP() << "PgBouncer 1.25.2 answers SET of such a parameter with success (command tag SET k=v) "
                        "and silently keeps the old value; poolguard refuses so the operator knows";
    auto cfg = base_config("transaction", 2);
    cfg.set("admin_users", kApp);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn admin(p.dsn(kApp, kAppPass, "pgbouncer"));
    ASSERT_TRUE(admin.ok()) << admin.error_message();
    const auto before = show_config(admin);
    // PgBouncer 1.25.2's non-changeable parameters (SHOW CONFIG changeable = no) are among them.
    const std::set<std::string> pgbouncer_fixed = {"disable_pqexec",
                                                   "job_name",
                                                   "listen_backlog",
                                                   "listen_port",
                                                   "pkt_buf",
                                                   "so_reuseport",
                                                   "track_extra_parameters",
                                                   "unix_socket_dir",
                                                   "unix_socket_mode",
                                                   "listen_addr",
                                                   "pidfile",
                                                   "resolv_conf",
                                                   "unix_socket_group",
                                                   "user"};
    std::set<std::string> refused;
    for (const auto* table : {&params::pgbouncer_params(), &params::poolguard_params()}) {
        for (const auto& spec : *table) {
            const std::string name(spec.name);
            if (params::changeable_at_runtime(name)) continue;
            ASSERT_TRUE(before.count(name)) << name;
            EXPECT_EQ(before.at(name).second, "no") << name;
            std::string value = "x13";
            if (spec.kind == ValueKind::kInt || spec.kind == ValueKind::kIntOrBool ||
                spec.kind == ValueKind::kOctal)
                value = "1";
            if (spec.kind == ValueKind::kBool) value = before.at(name).first == "1" ? "0" : "1";
            if (spec.kind == ValueKind::kDuration) value = "17";
            auto r = admin.exec("SET " + name + " = " + sql_literal(value));
            EXPECT_FALSE(r.ok()) << "SET " << name << " was accepted";
            EXPECT_EQ(r.sqlstate, "55P02") << name << ": " << r.describe();
            EXPECT_NE(r.error.find(name), std::string::npos) << r.describe();
            refused.insert(name);
        }
    }
    for (const auto& name : pgbouncer_fixed)
        EXPECT_TRUE(refused.contains(name)) << name << " is fixed in PgBouncer 1.25.2 but SET accepts it";
    const auto after = show_config(admin);
    for (const auto& name : refused)
        EXPECT_EQ(after.at(name).first, before.at(name).first) << name;
    // Unknown parameters and invalid values are errors too (PgBouncer: 08P01 "SET failed").
    EXPECT_FALSE(admin.exec("SET no_such_parameter = 1").ok());
    EXPECT_FALSE(admin.exec("SET default_pool_size = 'abc'").ok());
    EXPECT_FALSE(admin.exec("SET pool_mode = 'foo'").ok());
    EXPECT_EQ(show_config(admin).at("pool_mode").first, before.at("pool_mode").first);
}

}  // namespace
}  // namespace itest
