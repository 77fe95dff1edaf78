// Tests the admin console (admin/admin_console): PgBouncer 1.25 column lists, value formats, privileges,
// parsing.
#include "admin/admin_console.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace poolguard::admin {
namespace {

using Value = std::optional<std::string>;
using Row = std::vector<Value>;

// ---- a tiny decoder for the backend messages the console writes ----

uint32_t be32(std::string_view s, size_t at) {
    return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) |
           (uint32_t(uint8_t(s[at + 2])) << 8) | uint32_t(uint8_t(s[at + 3]));
}
uint16_t be16(std::string_view s, size_t at) {
    return uint16_t((uint8_t(s[at]) << 8) | uint8_t(s[at + 1]));
}

struct Msg {
    char type;
    std::string body;
};

// Splits `out` into typed frames; a malformed frame fails the test.
std::vector<Msg> frames(const std::string& out) {
    std::vector<Msg> msgs;
    size_t i = 0;
    while (i < out.size()) {
        EXPECT_GE(out.size() - i, 5u) << "truncated frame header";
        if (out.size() - i < 5) break;
        const uint32_t len = be32(out, i + 1);
        EXPECT_GE(len, 4u);
        EXPECT_LE(len, out.size() - i - 1) << "frame runs past the end";
        if (len < 4 || len > out.size() - i - 1) break;
        msgs.push_back({out[i], out.substr(i + 5, len - 4)});
        i += 1 + len;
    }
    return msgs;
}

std::string cstr(const std::string& b, size_t& at) {
    const size_t end = b.find('\0', at);
    EXPECT_NE(end, std::string::npos);
    std::string s = b.substr(at, end - at);
    at = end + 1;
    return s;
}

struct Fields {
    std::string severity, code, message, detail;
};

Fields parse_fields(const std::string& b) {
    Fields f;
    size_t at = 0;
    while (at < b.size() && b[at] != '\0') {
        const char code = b[at++];
        const std::string v = cstr(b, at);
        if (code == 'S') f.severity = v;
        if (code == 'C') f.code = v;
        if (code == 'M') f.message = v;
        if (code == 'D') f.detail = v;
    }
    return f;
}

// What one command answered.
struct Reply {
    std::vector<std::string> columns;
    std::vector<Row> rows;
    std::vector<Fields> notices;
    std::string tag;
    std::optional<Fields> error;
    bool empty_query = false;
};

std::vector<Reply> replies(const std::string& out) {
    std::vector<Reply> rs;
    Reply cur;
    for (const Msg& m : frames(out)) {
        const std::string& b = m.body;
        switch (m.type) {
            case 'T': {
                const uint16_t n = be16(b, 0);
                size_t at = 2;
                for (uint16_t k = 0; k < n; ++k) {
                    cur.columns.push_back(cstr(b, at));
                    EXPECT_EQ(be32(b, at + 6), 25u) << "column type should be text";
                    at += 18;
                }
                EXPECT_EQ(at, b.size());
                break;
            }
            case 'D': {
                const uint16_t n = be16(b, 0);
                EXPECT_EQ(n, cur.columns.size()) << "DataRow width differs from RowDescription";
                size_t at = 2;
                Row row;
                for (uint16_t k = 0; k < n; ++k) {
                    const uint32_t len = be32(b, at);
                    at += 4;
                    if (len == 0xffffffffu) {
                        row.push_back(std::nullopt);
                    } else {
                        row.push_back(b.substr(at, len));
                        at += len;
                    }
                }
                EXPECT_EQ(at, b.size());
                cur.rows.push_back(std::move(row));
                break;
            }
            case 'N':
                cur.notices.push_back(parse_fields(b));
                break;
            case 'C':
                cur.tag = b.substr(0, b.find('\0'));
                rs.push_back(std::move(cur));
                cur = {};
                break;
            case 'E':
                cur.error = parse_fields(b);
                rs.push_back(std::move(cur));
                cur = {};
                break;
            case 'I':
                cur.empty_query = true;
                EXPECT_TRUE(b.empty());
                rs.push_back(std::move(cur));
                cur = {};
                break;
            default:
                ADD_FAILURE() << "unexpected message type " << m.type;
        }
    }
    EXPECT_TRUE(cur.columns.empty() && cur.rows.empty() && cur.notices.empty()) << "unterminated reply";
    return rs;
}

// ---- a hand-written fake backend: canned rows, recorded control calls ----

class FakeBackend : public AdminBackend {
  public:
    std::vector<PoolRow> pool_rows;
    std::vector<ConnectionRow> client_rows, server_rows;
    std::vector<StatsRow> totals, averages;
    std::vector<DatabaseRow> database_rows;
    std::vector<UserRow> user_rows;
    std::vector<ConfigRow> config;
    std::vector<std::pair<std::string, int64_t>> list_rows;
    std::vector<std::pair<std::string, std::string>> state_rows;
    std::string version_text = "poolguard 0.1.0";

    std::vector<std::string> calls;  // "pause(db)", "set(k,v)", ...
    std::optional<Error> fail_with;  // returned by every control verb when set
    bool throw_on_show = false;

    std::vector<PoolRow> pools() override { return maybe_throw(pool_rows); }
    std::vector<ConnectionRow> clients() override { return maybe_throw(client_rows); }
    std::vector<ConnectionRow> servers() override { return maybe_throw(server_rows); }
    std::vector<StatsRow> stats_totals() override { return maybe_throw(totals); }
    std::vector<StatsRow> stats_averages() override { return maybe_throw(averages); }
    std::vector<DatabaseRow> databases() override { return maybe_throw(database_rows); }
    std::vector<UserRow> users() override { return maybe_throw(user_rows); }
    std::vector<ConfigRow> config_rows() override { return maybe_throw(config); }
    std::vector<std::pair<std::string, int64_t>> lists() override { return maybe_throw(list_rows); }
    std::string version() override { return maybe_throw(version_text); }
    std::vector<std::pair<std::string, std::string>> state() override { return maybe_throw(state_rows); }
    std::vector<ClassRow> class_rows;
    std::vector<BreakerRow> breaker_rows;
    std::vector<ClassRow> classes() override { return maybe_throw(class_rows); }
    std::vector<BreakerRow> breakers() override { return maybe_throw(breaker_rows); }
    std::vector<AdaptiveRow> adaptive_rows;
    std::vector<AdaptiveRow> adaptive() override { return maybe_throw(adaptive_rows); }

    Status set(const std::string& k, const std::string& v) override {
        return record("set(" + k + "," + v + ")");
    }
    Status pause(const std::string& db) override { return record("pause(" + db + ")"); }
    Status resume(const std::string& db) override { return record("resume(" + db + ")"); }
    Status disable(const std::string& db) override { return record("disable(" + db + ")"); }
    Status enable(const std::string& db) override { return record("enable(" + db + ")"); }
    Status reload() override { return record("reload()"); }
    Status kill(const std::string& db) override { return record("kill(" + db + ")"); }
    Status kill_client(uint64_t id) override { return record("kill_client(" + std::to_string(id) + ")"); }
    Status reconnect(const std::string& db) override { return record("reconnect(" + db + ")"); }
    Status wait_close(const std::string& db) override { return record("wait_close(" + db + ")"); }
    Status shutdown() override { return record("shutdown()"); }
    Status shutdown_waiting(bool for_clients) override {
        return record(std::string("shutdown_waiting(") + (for_clients ? "clients" : "servers") + ")");
    }
    Status suspend() override { return record("suspend()"); }

  private:
    template <typename T>
    T maybe_throw(const T& v) {
        if (throw_on_show) throw std::runtime_error("backend exploded");
        return v;
    }
    Status record(std::string call) {
        calls.push_back(std::move(call));
        if (fail_with) return std::unexpected(*fail_with);
        return {};
    }
};

class AdminConsoleTest : public ::testing::Test {
  protected:
    FakeBackend backend;

    std::vector<Reply> run(std::string_view sql, bool can_modify = true) {
        AdminConsole console(backend, can_modify);
        std::string out;
        console.execute(sql, out);
        return replies(out);
    }

    // Runs one command that must succeed with a result set.
    Reply show(std::string_view sql, bool can_modify = true) {
        auto rs = run(sql, can_modify);
        EXPECT_EQ(rs.size(), 1u) << sql;
        if (rs.empty()) return {};
        EXPECT_FALSE(rs[0].error) << sql << ": " << rs[0].error->message;
        EXPECT_EQ(rs[0].tag, "SHOW") << sql;
        return rs[0];
    }

    // Runs one command that must fail; returns the error.
    Fields error_of(std::string_view sql, bool can_modify = true) {
        auto rs = run(sql, can_modify);
        EXPECT_EQ(rs.size(), 1u) << sql;
        if (rs.empty() || !rs.back().error) {
            ADD_FAILURE() << sql << " did not fail";
            return {};
        }
        EXPECT_TRUE(rs.back().columns.empty());
        return *rs.back().error;
    }
};

// `cols` starts with `prefix`.
void expect_prefix(const std::vector<std::string>& cols, const std::vector<std::string>& prefix,
                   std::string_view what) {
    ASSERT_GE(cols.size(), prefix.size()) << what;
    EXPECT_EQ(std::vector<std::string>(cols.begin(), cols.begin() + prefix.size()), prefix) << what;
}

// Value of column `name` in row `r` of `reply`.
Value cell(const Reply& reply, size_t r, std::string_view name) {
    for (size_t i = 0; i < reply.columns.size(); ++i)
        if (reply.columns[i] == name) return reply.rows.at(r).at(i);
    ADD_FAILURE() << "no column " << name;
    return std::nullopt;
}

// ---- column lists ----

// PgBouncer 1.25.2's columns, as a running 1.25.2 answers them.
const std::vector<std::string> kConnectionCols = {"type",
                                                  "user",
                                                  "database",
                                                  "replication",
                                                  "state",
                                                  "addr",
                                                  "port",
                                                  "local_addr",
                                                  "local_port",
                                                  "connect_time",
                                                  "request_time",
                                                  "wait",
                                                  "wait_us",
                                                  "close_needed",
                                                  "ptr",
                                                  "link",
                                                  "remote_pid",
                                                  "tls",
                                                  "application_name",
                                                  "prepared_statements",
                                                  "id"};

TEST_F(AdminConsoleTest, EveryShowStartsWithPgBouncer125Columns) {
    expect_prefix(
        show("SHOW POOLS").columns,
        {"database", "user", "cl_active", "cl_waiting", "cl_active_cancel_req", "cl_waiting_cancel_req",
         "sv_active", "sv_active_cancel", "sv_being_canceled", "sv_idle", "sv_used", "sv_tested", "sv_login",
         "maxwait", "maxwait_us", "pool_mode", "load_balance_hosts"},
        "pools");
    expect_prefix(show("SHOW CLIENTS").columns, kConnectionCols, "clients");
    expect_prefix(show("SHOW SERVERS").columns, kConnectionCols, "servers");
    expect_prefix(show("SHOW STATS").columns,
                  {"database",
                   "total_server_assignment_count",
                   "total_xact_count",
                   "total_query_count",
                   "total_received",
                   "total_sent",
                   "total_xact_time",
                   "total_query_time",
                   "total_wait_time",
                   "total_client_parse_count",
                   "total_server_parse_count",
                   "total_bind_count",
                   "avg_server_assignment_count",
                   "avg_xact_count",
                   "avg_query_count",
                   "avg_recv",
                   "avg_sent",
                   "avg_xact_time",
                   "avg_query_time",
                   "avg_wait_time",
                   "avg_client_parse_count",
                   "avg_server_parse_count",
                   "avg_bind_count"},
                  "stats");
    expect_prefix(
        show("SHOW STATS_TOTALS").columns,
        {"database", "server_assignment_count", "xact_count", "query_count", "bytes_received", "bytes_sent",
         "xact_time", "query_time", "wait_time", "client_parse_count", "server_parse_count", "bind_count"},
        "stats_totals");
    expect_prefix(show("SHOW STATS_AVERAGES").columns,
                  {"database", "server_assignment_count", "xact_count", "query_count", "bytes_received",
                   "bytes_sent", "xact_time", "query_time", "wait_time", "avg_client_parse_count",
                   "avg_server_parse_count", "avg_bind_count"},
                  "stats_averages");
    expect_prefix(
        show("SHOW DATABASES").columns,
        {"name", "host", "port", "database", "force_user", "pool_size", "min_pool_size", "reserve_pool_size",
         "server_lifetime", "pool_mode", "load_balance_hosts", "max_connections", "current_connections",
         "max_client_connections", "current_client_connections", "paused", "disabled"},
        "databases");
    expect_prefix(show("SHOW USERS").columns,
                  {"name", "pool_size", "reserve_pool_size", "pool_mode", "max_user_connections",
                   "current_connections", "max_user_client_connections", "current_client_connections"},
                  "users");
    std::vector<std::string> sockets = kConnectionCols;
    for (const char* c :
         {"recv_pos", "pkt_pos", "pkt_remain", "send_pos", "send_remain", "pkt_avail", "send_avail"})
        sockets.push_back(c);
    expect_prefix(show("SHOW SOCKETS").columns, sockets, "sockets");
    expect_prefix(show("SHOW ACTIVE_SOCKETS").columns, sockets, "active_sockets");
    EXPECT_EQ(show("SHOW FDS").columns,
              (std::vector<std::string>{"fd", "task", "user", "database", "addr", "port", "cancel", "link",
                                        "client_encoding", "std_strings", "datestyle", "timezone", "password",
                                        "scram_client_key", "scram_server_key"}));
    EXPECT_EQ(show("SHOW PEERS").columns, (std::vector<std::string>{"peer_id", "host", "port", "pool_size"}));
    EXPECT_EQ(show("SHOW PEER_POOLS").columns,
              (std::vector<std::string>{"peer_id", "cl_active_cancel_req", "cl_waiting_cancel_req",
                                        "sv_active_cancel", "sv_login"}));
    EXPECT_EQ(show("SHOW MEM").columns,
              (std::vector<std::string>{"name", "size", "used", "free", "memtotal"}));
    EXPECT_EQ(show("SHOW DNS_HOSTS").columns, (std::vector<std::string>{"hostname", "ttl", "addrs"}));
    EXPECT_EQ(show("SHOW DNS_ZONES").columns, (std::vector<std::string>{"zonename", "serial", "count"}));
    EXPECT_EQ(show("SHOW CONFIG").columns,
              (std::vector<std::string>{"key", "value", "default", "changeable"}));
    EXPECT_EQ(show("SHOW LISTS").columns, (std::vector<std::string>{"list", "items"}));
    EXPECT_EQ(show("SHOW VERSION").columns, (std::vector<std::string>{"version"}));
    EXPECT_EQ(show("SHOW STATE").columns, (std::vector<std::string>{"key", "value"}));
    EXPECT_EQ(show("SHOW TOTALS").columns, (std::vector<std::string>{"name", "value"}));
}

// ---- values ----

TEST_F(AdminConsoleTest, PoolsValues) {
    backend.pool_rows.push_back(PoolRow{.database = "app",
                                        .user = "alice",
                                        .cl_active = 3,
                                        .cl_waiting = 2,
                                        .sv_active = 1,
                                        .sv_idle = 4,
                                        .sv_used = 5,
                                        .sv_tested = 6,
                                        .sv_login = 7,
                                        .maxwait_us = 2'500'000,
                                        .pool_mode = "transaction",
                                        .paused = true});
    const Reply r = show("SHOW POOLS");
    ASSERT_EQ(r.rows.size(), 1u);
    const Row expected = {"app", "alice", "3", "2", "0", "0",      "1",           "0",          "0",
                          "4",   "5",     "6", "7", "2", "500000", "transaction", std::nullopt, "1"};
    EXPECT_EQ(r.rows[0], expected);
}

TEST_F(AdminConsoleTest, ClientsAndServersValues) {
    backend.client_rows.push_back(ConnectionRow{.type = "C",
                                                .user = "alice",
                                                .database = "app",
                                                .state = "waiting",
                                                .addr = "127.0.0.1",
                                                .port = 51234,
                                                .local_addr = "127.0.0.1",
                                                .local_port = 6432,
                                                .connect_time_unix = 1700000000,
                                                .request_time_unix = 1700000061,
                                                .wait_us = 3'000'042,
                                                .close_needed = false,
                                                .ptr = 42,
                                                .link = 0,
                                                .remote_pid = 0,
                                                .tls = "",
                                                .application_name = "psql"});
    backend.client_rows.push_back(ConnectionRow{.type = "C", .state = "active", .ptr = 7, .link = 255});
    backend.server_rows.push_back(ConnectionRow{.type = "S",
                                                .user = "alice",
                                                .database = "app",
                                                .state = "idle",
                                                .close_needed = true,
                                                .ptr = 0xabc,
                                                .link = 42,
                                                .remote_pid = 4242,
                                                .tls = "TLSv1.3/TLS_AES_256_GCM_SHA384"});

    const Reply c = show("SHOW CLIENTS");
    ASSERT_EQ(c.rows.size(), 2u);
    const Row expected = {"C",
                          "alice",
                          "app",
                          "none",
                          "waiting",
                          "127.0.0.1",
                          "51234",
                          "127.0.0.1",
                          "6432",
                          "2023-11-14 22:13:20 UTC",
                          "2023-11-14 22:14:21 UTC",
                          "3",
                          "42",
                          "0",
                          "0x2a",
                          "",
                          "0",
                          "",
                          "psql",
                          "0",
                          "42"};
    EXPECT_EQ(Row(c.rows[0].begin(), c.rows[0].begin() + 21), expected);
    EXPECT_EQ(cell(c, 0, "id"), "42");
    EXPECT_EQ(cell(c, 1, "user"), "(nouser)");
    EXPECT_EQ(cell(c, 1, "database"), "(nodb)");
    EXPECT_EQ(cell(c, 1, "link"), "0xff");
    EXPECT_EQ(cell(c, 1, "connect_time"), "1970-01-01 00:00:00 UTC");

    const Reply s = show("show servers");
    ASSERT_EQ(s.rows.size(), 1u);
    EXPECT_EQ(cell(s, 0, "type"), "S");
    EXPECT_EQ(cell(s, 0, "state"), "idle");
    EXPECT_EQ(cell(s, 0, "close_needed"), "1");
    EXPECT_EQ(cell(s, 0, "ptr"), "0xabc");
    EXPECT_EQ(cell(s, 0, "link"), "0x2a");
    EXPECT_EQ(cell(s, 0, "remote_pid"), "4242");
    EXPECT_EQ(cell(s, 0, "tls"), "TLSv1.3/TLS_AES_256_GCM_SHA384");
    EXPECT_EQ(cell(s, 0, "wait"), "0");
    EXPECT_EQ(cell(s, 0, "wait_us"), "0");
}

TEST_F(AdminConsoleTest, StatsJoinsTotalsWithAveragesPerDatabase) {
    backend.totals = {
        StatsRow{"app", 100, 400, 5000, 9000, 700000, 300000, 1234, 90, 11, 12, 13},
        StatsRow{"other", 1, 2, 3, 4, 5, 6, 7},
    };
    // Per-second rates over the last period: 10 xact/s spending 25000 us/s in transactions -> 2500 us per
    // xact.
    backend.averages = {StatsRow{"app", 10, 40, 500, 900, 25000, 8000, 77, 9, 1, 2, 3}};
    const Reply r = show("SHOW STATS");
    ASSERT_EQ(r.rows.size(), 2u);
    const Row app = {"app", "90", "100", "400", "5000", "9000", "700000", "300000", "1234", "11", "12", "13",
                     "9",   "10", "40",  "500", "900",  "2500", "200",    "77",     "1",    "2",  "3"};
    EXPECT_EQ(r.rows[0], app);
    // No averages row: zeros, never a division by zero.
    EXPECT_EQ(cell(r, 1, "avg_xact_count"), "0");
    EXPECT_EQ(cell(r, 1, "avg_xact_time"), "0");
    EXPECT_EQ(cell(r, 1, "total_wait_time"), "7");

    const Reply t = show("SHOW STATS_TOTALS");
    ASSERT_EQ(t.rows.size(), 2u);
    EXPECT_EQ(t.rows[0],
              (Row{"app", "90", "100", "400", "5000", "9000", "700000", "300000", "1234", "11", "12", "13"}));

    const Reply a = show("SHOW STATS_AVERAGES");
    ASSERT_EQ(a.rows.size(), 1u);
    EXPECT_EQ(a.rows[0], (Row{"app", "9", "10", "40", "500", "900", "2500", "200", "77", "1", "2", "3"}));

    const Reply totals = show("SHOW TOTALS");
    ASSERT_EQ(totals.rows.size(), 22u);
    EXPECT_EQ(totals.rows[0], (Row{"total_server_assignment_count", "90"}));
    EXPECT_EQ(totals.rows[1], (Row{"total_xact_count", "101"}));
    EXPECT_EQ(totals.rows[3], (Row{"total_client_bytes", "5003"}));
    EXPECT_EQ(totals.rows[16], (Row{"avg_xact_time", "2500"}));
    EXPECT_EQ(totals.rows[21], (Row{"avg_ps_bind_count", "3"}));
}

TEST_F(AdminConsoleTest, DatabasesUsersConfigListsVersionState) {
    backend.database_rows.push_back(DatabaseRow{.name = "app",
                                                .host = "db.local",
                                                .port = 5432,
                                                .database = "appdb",
                                                .force_user = "",
                                                .pool_size = 20,
                                                .min_pool_size = 2,
                                                .reserve_pool = 5,
                                                .pool_mode = "",
                                                .max_connections = 100,
                                                .current_connections = 7,
                                                .paused = true,
                                                .disabled = false});
    backend.database_rows.push_back(
        DatabaseRow{.name = "b", .host = "", .force_user = "bob", .pool_mode = "session", .disabled = true});
    const Reply d = show("SHOW DATABASES");
    ASSERT_EQ(d.rows.size(), 2u);
    backend.database_rows[0].server_lifetime_s = 3600;
    backend.database_rows[0].max_client_connections = 50;
    backend.database_rows[0].current_client_connections = 4;
    const Reply d2 = show("SHOW DATABASES");
    const Row app = {"app",        "db.local",   "5432", "appdb", std::nullopt, "20", "2", "5", "3600",
                     std::nullopt, std::nullopt, "100",  "7",     "50",         "4",  "1", "0"};
    EXPECT_EQ(Row(d2.rows[0].begin(), d2.rows[0].begin() + 17), app);
    EXPECT_EQ(cell(d, 1, "host"), std::nullopt);
    EXPECT_EQ(cell(d, 1, "force_user"), "bob");
    EXPECT_EQ(cell(d, 1, "pool_mode"), "session");
    EXPECT_EQ(cell(d, 1, "disabled"), "1");

    backend.user_rows = {UserRow{"alice", "", 10, 3}, UserRow{"bob", "statement", 0, 0}};
    const Reply u = show("SHOW USERS");
    ASSERT_EQ(u.rows.size(), 2u);
    EXPECT_EQ(u.rows[0], (Row{"alice", "", "", std::nullopt, "10", "3", "0", "0"}));
    EXPECT_EQ(cell(u, 1, "pool_mode"), "statement");
    backend.user_rows[1].pool_size = 4;
    backend.user_rows[1].reserve_pool_size = 1;
    backend.user_rows[1].max_user_client_connections = 30;
    backend.user_rows[1].current_client_connections = 2;
    EXPECT_EQ(show("SHOW USERS").rows[1], (Row{"bob", "4", "1", "statement", "0", "0", "30", "2"}));

    backend.config = {{"pool_mode", "session", "session", true}, {"listen_port", "6432", "6432", false}};
    const Reply c = show("SHOW CONFIG");
    EXPECT_EQ(c.rows, (std::vector<Row>{{"pool_mode", "session", "session", "yes"},
                                        {"listen_port", "6432", "6432", "no"}}));

    backend.list_rows = {{"databases", 2}, {"used_clients", 17}};
    EXPECT_EQ(show("SHOW LISTS").rows, (std::vector<Row>{{"databases", "2"}, {"used_clients", "17"}}));

    EXPECT_EQ(show("SHOW VERSION").rows, (std::vector<Row>{{"poolguard 0.1.0"}}));

    backend.state_rows = {{"active", "yes"}, {"paused", "no"}, {"suspended", "no"}};
    EXPECT_EQ(show("SHOW STATE").rows,
              (std::vector<Row>{{"active", "yes"}, {"paused", "no"}, {"suspended", "no"}}));
}

TEST_F(AdminConsoleTest, ShowHelpIsANoticeWithTheCommandList) {
    const Reply r = show("SHOW HELP");
    EXPECT_TRUE(r.columns.empty());
    ASSERT_EQ(r.notices.size(), 1u);
    EXPECT_EQ(r.notices[0].severity, "NOTICE");
    EXPECT_EQ(r.notices[0].message, "Console usage");
    EXPECT_NE(r.notices[0].detail.find("SHOW STATS|STATS_TOTALS|STATS_AVERAGES"), std::string::npos);
    EXPECT_NE(r.notices[0].detail.find("PAUSE [<db>]"), std::string::npos);
    EXPECT_NE(r.notices[0].detail.find("KILL [<db>]"), std::string::npos);
    EXPECT_NE(r.notices[0].detail.find("SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS"), std::string::npos);
    EXPECT_NE(r.notices[0].detail.find("SHOW FDS|SOCKETS|ACTIVE_SOCKETS|LISTS|MEM|STATE"), std::string::npos);
}

TEST_F(AdminConsoleTest, DriverProbesGetFixedValues) {
    const Reply r = show("SHOW client_encoding");
    EXPECT_EQ(r.columns, (std::vector<std::string>{"client_encoding"}));
    EXPECT_EQ(r.rows, (std::vector<Row>{{"UTF-8"}}));

    // SET of such a parameter is ignored with a notice, even for a stats user.
    auto rs = run("SET extra_float_digits = 3", /*can_modify=*/false);
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_FALSE(rs[0].error);
    EXPECT_EQ(rs[0].tag, "SET");
    ASSERT_EQ(rs[0].notices.size(), 1u);
    EXPECT_EQ(rs[0].notices[0].message, "SET ignored");
    EXPECT_TRUE(backend.calls.empty());
}

// ---- privileges ----

TEST_F(AdminConsoleTest, StatsUserMayOnlyShow) {
    for (const char* sql : {"SHOW POOLS", "SHOW CLIENTS", "SHOW SERVERS", "SHOW STATS", "SHOW STATS_TOTALS",
                            "SHOW STATS_AVERAGES", "SHOW DATABASES", "SHOW USERS", "SHOW CONFIG",
                            "SHOW LISTS", "SHOW VERSION", "SHOW STATE", "SHOW TOTALS", "SELECT pools"}) {
        show(sql, /*can_modify=*/false);
    }
    for (const char* sql :
         {"SET pool_mode = session", "PAUSE", "PAUSE app", "RESUME", "RESUME app", "DISABLE app",
          "ENABLE app", "RELOAD", "KILL app", "KILL_CLIENT 42", "RECONNECT", "RECONNECT app", "WAIT_CLOSE",
          "WAIT_CLOSE app", "SHUTDOWN", "SHUTDOWN WAIT_FOR_CLIENTS", "SUSPEND", "DISABLE", "KILL"}) {
        const Fields e = error_of(sql, /*can_modify=*/false);
        EXPECT_EQ(e.code, "42501") << sql;
        EXPECT_EQ(e.message, "admin access needed") << sql;
    }
    EXPECT_TRUE(backend.calls.empty());
}

// ---- control verbs ----

TEST_F(AdminConsoleTest, ControlVerbsCallTheBackendAndAnswerTheirTag) {
    const std::vector<std::tuple<const char*, const char*, const char*>> cases = {
        {"PAUSE", "pause()", "PAUSE"},
        {"pause app;", "pause(app)", "PAUSE"},
        {"Pause MyDb", "pause(MyDb)", "PAUSE"},
        {"PAUSE \"my-db\"\"x\"", "pause(my-db\"x)", "PAUSE"},
        {"RESUME", "resume()", "RESUME"},
        {"RESUME app", "resume(app)", "RESUME"},
        {"DISABLE app", "disable(app)", "DISABLE"},
        {"ENABLE app", "enable(app)", "ENABLE"},
        {"RELOAD", "reload()", "RELOAD"},
        {"KILL app", "kill(app)", "KILL"},
        {"KILL_CLIENT 42", "kill_client(42)", "KILL_CLIENT"},
        {"KILL_CLIENT 0x2A", "kill_client(42)", "KILL_CLIENT"},
        {"RECONNECT", "reconnect()", "RECONNECT"},
        {"RECONNECT app", "reconnect(app)", "RECONNECT"},
        {"WAIT_CLOSE", "wait_close()", "WAIT_CLOSE"},
        {"WAIT_CLOSE app", "wait_close(app)", "WAIT_CLOSE"},
        {"SHUTDOWN", "shutdown()", "SHUTDOWN"},
    };
    for (const auto& [sql, call, tag] : cases) {
        backend.calls.clear();
        auto rs = run(sql);
        ASSERT_EQ(rs.size(), 1u) << sql;
        EXPECT_FALSE(rs[0].error) << sql << ": " << rs[0].error->message;
        EXPECT_EQ(rs[0].tag, tag) << sql;
        EXPECT_TRUE(rs[0].columns.empty()) << sql;
        EXPECT_EQ(backend.calls, std::vector<std::string>{call}) << sql;
    }
}

TEST_F(AdminConsoleTest, WaitCloseStopsTheQueryUntilResumed) {
    AdminConsole console(backend, true);
    std::string out;
    console.execute("PAUSE a; WAIT_CLOSE app; RESUME a; WAIT_CLOSE; RESUME b", out);
    ASSERT_TRUE(console.pending_wait().has_value());
    EXPECT_EQ(console.pending_wait()->kind, AdminConsole::PendingWait::Kind::kWaitClose);
    EXPECT_EQ(console.pending_wait()->database, "app");
    EXPECT_EQ(backend.calls, (std::vector<std::string>{"pause(a)", "wait_close(app)"}));
    console.resume(out);
    ASSERT_TRUE(console.pending_wait().has_value());
    EXPECT_EQ(console.pending_wait()->database, "");
    console.resume(out);
    EXPECT_FALSE(console.pending_wait().has_value());
    EXPECT_EQ(backend.calls, (std::vector<std::string>{"pause(a)", "wait_close(app)", "resume(a)",
                                                       "wait_close()", "resume(b)"}));
    const auto rs = replies(out);
    ASSERT_EQ(rs.size(), 5u);
    EXPECT_EQ(rs[1].tag, "WAIT_CLOSE");
    EXPECT_EQ(rs[4].tag, "RESUME");
    // A failed WAIT_CLOSE (for a stats user: refused) leaves nothing pending.
    AdminConsole stats(backend, false);
    std::string out2;
    stats.execute("WAIT_CLOSE", out2);
    EXPECT_FALSE(stats.pending_wait().has_value());
    // SUSPEND waits too.
    AdminConsole suspend(backend, true);
    std::string out3;
    suspend.execute("SUSPEND; SHOW VERSION", out3);
    ASSERT_TRUE(suspend.pending_wait().has_value());
    EXPECT_EQ(suspend.pending_wait()->kind, AdminConsole::PendingWait::Kind::kSuspend);
}

TEST_F(AdminConsoleTest, SetValues) {
    const std::vector<std::tuple<const char*, const char*, const char*>> cases = {
        {"SET default_pool_size = 30", "set(default_pool_size,30)", "SET default_pool_size=30"},
        {"set Default_Pool_Size to 31;", "set(default_pool_size,31)", "SET default_pool_size=31"},
        {"SET default_pool_size=32", "set(default_pool_size,32)", "SET default_pool_size=32"},
        {"SET server_reset_query = 'DISCARD ALL; SELECT ''x'''",
         "set(server_reset_query,DISCARD ALL; SELECT 'x')", "SET server_reset_query=DISCARD ALL; SELECT 'x'"},
        {"SET \"Odd\" = ''", "set(Odd,)", "SET Odd="},
        {"  SET  admin_users  =  'a, b'  ;  ", "set(admin_users,a, b)", "SET admin_users=a, b"},
    };
    for (const auto& [sql, call, tag] : cases) {
        backend.calls.clear();
        auto rs = run(sql);
        ASSERT_EQ(rs.size(), 1u) << sql;
        EXPECT_FALSE(rs[0].error) << sql << ": " << rs[0].error->message;
        EXPECT_EQ(rs[0].tag, tag) << sql;
        EXPECT_EQ(backend.calls, std::vector<std::string>{call}) << sql;
    }
    for (const char* bad : {"SET", "SET x", "SET x =", "SET x = = 1", "SET x = 1 2", "SET x 1", "SET 'x' = 1",
                            "SET x = 'unterminated", "SET \"\" = 1"}) {
        EXPECT_EQ(error_of(bad).code, "42601") << bad;
    }
}

TEST_F(AdminConsoleTest, BackendErrorsKeepTheirSqlstate) {
    backend.fail_with = Error{"no such database: nope", "3D000"};
    Fields e = error_of("PAUSE nope");
    EXPECT_EQ(e.code, "3D000");
    EXPECT_EQ(e.message, "no such database: nope");
    EXPECT_EQ(e.severity, "ERROR");

    backend.fail_with = Error{"already suspended/paused", ""};
    e = error_of("PAUSE");
    EXPECT_EQ(e.code, "08P01");
    EXPECT_EQ(e.message, "already suspended/paused");

    backend.fail_with = Error{"", ""};
    EXPECT_EQ(error_of("RELOAD").message, "RELOAD failed");
}

TEST_F(AdminConsoleTest, ArgumentRules) {
    EXPECT_EQ(error_of("DISABLE").message, "a database is required");
    EXPECT_EQ(error_of("ENABLE").message, "a database is required");
    EXPECT_EQ(error_of("RELOAD now").code, "42601");
    EXPECT_EQ(error_of("SHUTDOWN WAIT_FOR_SOMETHING").code, "42601");
    EXPECT_EQ(error_of("SUSPEND now").code, "42601");
    EXPECT_EQ(error_of("PAUSE a b").code, "42601");
    EXPECT_EQ(error_of("PAUSE 'app'").code, "42601");
    EXPECT_EQ(error_of("KILL_CLIENT").code, "42601");
    for (const char* bad : {"KILL_CLIENT abc", "KILL_CLIENT -1", "KILL_CLIENT 0x", "KILL_CLIENT 12x",
                            "KILL_CLIENT 99999999999999999999999"}) {
        EXPECT_EQ(error_of(bad).message, "invalid client pointer supplied") << bad;
    }
    EXPECT_TRUE(backend.calls.empty());
    // KILL without a database: every database (PgBouncer 1.25).
    EXPECT_EQ(run("KILL").at(0).tag, "KILL");
    EXPECT_EQ(run("SUSPEND").at(0).tag, "SUSPEND");
    EXPECT_EQ(run("SHUTDOWN WAIT_FOR_SERVERS").at(0).tag, "SHUTDOWN");
    EXPECT_EQ(run("shutdown wait_for_clients").at(0).tag, "SHUTDOWN");
    EXPECT_EQ(backend.calls, (std::vector<std::string>{"kill()", "suspend()", "shutdown_waiting(servers)",
                                                       "shutdown_waiting(clients)"}));
}

// ---- the language ----

TEST_F(AdminConsoleTest, UnknownCommandIs42601) {
    for (const char* sql : {"SELECT 1 + 1", "FROB", "SHOW", "SHOW NOTHING", "show pools extra", "= =", "'x'",
                            "SHOW \"pools", "\"\""}) {
        const Fields e = error_of(sql);
        EXPECT_EQ(e.code, "42601") << sql;
        EXPECT_EQ(e.severity, "ERROR") << sql;
    }
    const Fields e = error_of("FROB it");
    EXPECT_EQ(e.message, "invalid command 'FROB it', use SHOW HELP;");
}

TEST_F(AdminConsoleTest, CaseWhitespaceAndSemicolons) {
    show("  \n\tsHoW \t pOoLs \r\n ;  ");
    show("show pools;");
    show("SELECT VERSION");
}

TEST_F(AdminConsoleTest, MultipleCommandsInOneQuery) {
    auto rs = run("SHOW VERSION; PAUSE app;; SHOW LISTS;");
    ASSERT_EQ(rs.size(), 3u);
    EXPECT_EQ(rs[0].columns, (std::vector<std::string>{"version"}));
    EXPECT_EQ(rs[0].tag, "SHOW");
    EXPECT_EQ(rs[1].tag, "PAUSE");
    EXPECT_EQ(rs[2].columns, (std::vector<std::string>{"list", "items"}));
    EXPECT_EQ(backend.calls, std::vector<std::string>{"pause(app)"});

    // A ';' inside quotes does not split; an error stops the rest.
    backend.calls.clear();
    rs = run("SET server_reset_query = 'DISCARD ALL;'; BOGUS; RESUME");
    ASSERT_EQ(rs.size(), 2u);
    EXPECT_EQ(rs[0].tag, "SET server_reset_query=DISCARD ALL;");
    ASSERT_TRUE(rs[1].error);
    EXPECT_EQ(rs[1].error->code, "42601");
    EXPECT_EQ(backend.calls, std::vector<std::string>{"set(server_reset_query,DISCARD ALL;)"});

    // A backend failure stops the rest as well.
    backend.calls.clear();
    backend.fail_with = Error{"nope", "08P01"};
    rs = run("PAUSE; RESUME");
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(backend.calls, std::vector<std::string>{"pause()"});
}

TEST_F(AdminConsoleTest, EmptyQuery) {
    for (const char* sql : {"", "   ", ";", " ; ;\n", "\t"}) {
        auto rs = run(sql);
        ASSERT_EQ(rs.size(), 1u) << "'" << sql << "'";
        EXPECT_TRUE(rs[0].empty_query);
        EXPECT_TRUE(rs[0].tag.empty());
    }
    // Text after a NUL is not part of the Query.
    auto rs = run(std::string_view("\0SHOW POOLS", 11));
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_TRUE(rs[0].empty_query);
    rs = run(std::string_view("SHOW VERSION\0; PAUSE", 20));
    ASSERT_EQ(rs.size(), 1u);
    EXPECT_EQ(rs[0].columns, (std::vector<std::string>{"version"}));
    EXPECT_TRUE(backend.calls.empty());
}

TEST_F(AdminConsoleTest, BackendExceptionBecomesAnInternalError) {
    backend.throw_on_show = true;
    auto rs = run("SHOW POOLS; SHOW VERSION");
    ASSERT_EQ(rs.size(), 1u);
    ASSERT_TRUE(rs[0].error);
    EXPECT_EQ(rs[0].error->code, "XX000");
    EXPECT_TRUE(rs[0].columns.empty());
}

// poolguard's own SHOW CLASSES / SHOW BREAKERS (issue 6).
TEST_F(AdminConsoleTest, ShowClassesAndBreakers) {
    backend.class_rows.push_back(ClassRow{"db", "app", "batch", 10, 40, 4, 7, 12, 4, 2'500'000});
    auto c = show("SHOW CLASSES");
    EXPECT_EQ(c.columns,
              (std::vector<std::string>{"database", "user", "class", "priority", "max_share", "max_servers",
                                        "cl_active", "cl_waiting", "sv_active", "maxwait", "maxwait_us"}));
    ASSERT_EQ(c.rows.size(), 1u);
    EXPECT_EQ(c.rows[0], (Row{"db", "app", "batch", "10", "40", "4", "7", "12", "4", "2", "500000"}));
    backend.breaker_rows.push_back(
        BreakerRow{"db", "open", "database refused a login (53300): full", 3, 1'200'000});
    auto b = show("show breakers");
    EXPECT_EQ(b.columns, (std::vector<std::string>{"database", "state", "opens", "state_seconds", "reason"}));
    ASSERT_EQ(b.rows.size(), 1u);
    EXPECT_EQ(b.rows[0], (Row{"db", "open", "3", "1", "database refused a login (53300): full"}));
}

// SHOW ADAPTIVE (issue 6 part 4): the adaptive limit per pool, PgBouncer's SHOW POOLS left as it is.
TEST_F(AdminConsoleTest, ShowAdaptive) {
    AdaptiveRow a;
    a.database = "db";
    a.user = "app";
    a.enabled = true;
    a.limit = 6;
    a.min_limit = 1;
    a.budget = 12;
    a.budget_source = "dbview";
    a.pool_size = 20;
    a.servers = 6;
    a.in_use = 5;
    a.latency_ms = 1.25;
    a.long_latency_ms = 0.8;
    a.gradient = 0.96;
    a.windows = 42;
    backend.adaptive_rows.push_back(a);
    auto r = show("SHOW ADAPTIVE");
    EXPECT_EQ(r.columns,
              (std::vector<std::string>{"database", "user", "adaptive", "limit", "min_limit", "budget",
                                        "budget_source", "pool_size", "servers", "sv_in_use", "latency_ms",
                                        "long_latency_ms", "gradient", "windows"}));
    ASSERT_EQ(r.rows.size(), 1u);
    EXPECT_EQ(r.rows[0], (Row{"db", "app", "1", "6", "1", "12", "dbview", "20", "6", "5", "1.250", "0.800",
                              "0.96", "42"}));
    show("SHOW ADAPTIVE", /*can_modify=*/false);  // a stats user may look
}

TEST_F(AdminConsoleTest, LongCommandIsCutInTheMessage) {
    const std::string sql = "FROB " + std::string(5000, 'x');
    const Fields e = error_of(sql);
    EXPECT_LT(e.message.size(), 300u);
    EXPECT_NE(e.message.find("..."), std::string::npos);
}

TEST_F(AdminConsoleTest, HostileInputNeverThrowsAndAlwaysFramesCleanly) {
    std::mt19937 rng(12345);
    const std::string alphabet = "SHOWPAUSEsetkill_ \t\n;'\"=x0\x01\xff";
    for (int i = 0; i < 3000; ++i) {
        std::string sql;
        const int len = static_cast<int>(rng() % 40);
        for (int k = 0; k < len; ++k)
            sql += alphabet[rng() % alphabet.size()];
        for (bool can_modify : {true, false}) {
            AdminConsole console(backend, can_modify);
            std::string out;
            ASSERT_NO_THROW(console.execute(sql, out)) << sql;
            const auto rs = replies(out);
            ASSERT_FALSE(rs.empty()) << sql;
            for (size_t k = 0; k + 1 < rs.size(); ++k)
                EXPECT_FALSE(rs[k].error || rs[k].empty_query) << sql;
        }
    }
}

}  // namespace
}  // namespace poolguard::admin
