// Owns the wire-protocol integration tests: extended query, pipelines, COPY, cancel, malformed messages.
#include <gtest/gtest.h>

#include <thread>

#include "fixtures.h"

namespace itest {
namespace {

class Protocol : public PoolerTest {
  protected:
    static void SetUpTestSuite() {
        PoolerTest::SetUpTestSuite();
        if (!server_->ok()) return;
        server_->exec("CREATE TABLE copy_in(id int, name text); GRANT ALL ON copy_in TO PUBLIC");
    }
};

TEST_F(Protocol, ExtendedQueryWithParametersInTransactionMode) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    for (int i = 0; i < 10; ++i) {
        QueryResult ra = a.exec_params("select $1::int + $2::int", {std::to_string(i), "1000"});
        QueryResult rb = b.exec_params("select $1::text || $2::text", {"b", std::to_string(i)});
        ASSERT_TRUE(ra.ok()) << ra.describe();
        ASSERT_TRUE(rb.ok()) << rb.describe();
        EXPECT_EQ(ra.value(), std::to_string(1000 + i));
        EXPECT_EQ(rb.value(), "b" + std::to_string(i));
    }
    QueryResult null_param = a.exec_params("select $1::text is null", {std::nullopt});
    EXPECT_EQ(null_param.value(), "t") << null_param.describe();
}

TEST_F(Protocol, UnnamedPreparedStatementInTransactionMode) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    for (int i = 0; i < 5; ++i) {
        QueryResult p = c.prepare("", "select $1::int * 3", 1);
        ASSERT_TRUE(p.ok()) << p.describe();
        QueryResult e = c.exec_prepared("", {std::to_string(i)});
        ASSERT_TRUE(e.ok()) << e.describe();
        EXPECT_EQ(e.value(), std::to_string(i * 3));
    }
}

TEST_F(Protocol, UnnamedPreparedStatementsOfInterleavedTransactions) {
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    ASSERT_TRUE(Ok(a.exec("BEGIN")));
    ASSERT_TRUE(Ok(b.exec("BEGIN")));
    ASSERT_TRUE(Ok(a.prepare("", "select $1::text || '-a'", 1)));
    ASSERT_TRUE(Ok(b.prepare("", "select $1::text || '-b'", 1)));
    QueryResult ra = a.exec_prepared("", {"x"});
    QueryResult rb = b.exec_prepared("", {"y"});
    EXPECT_EQ(ra.value(), "x-a") << ra.describe();
    EXPECT_EQ(rb.value(), "y-b") << rb.describe();
    EXPECT_TRUE(Ok(a.exec("COMMIT")));
    EXPECT_TRUE(Ok(b.exec("COMMIT")));
}

// Sends `count` PQsendQueryParams in pipeline mode and a sync; returns the values read back.
std::vector<std::string> run_pipeline(PgConn& c, int count, int base, std::string* problem) {
    std::vector<std::string> values;
    if (PQenterPipelineMode(c.get()) != 1) {
        *problem = "PQenterPipelineMode failed";
        return values;
    }
    for (int i = 0; i < count; ++i) {
        if (!c.send_params("select $1::int * 2", {std::to_string(base + i)})) *problem = "send failed";
    }
    PQpipelineSync(c.get());
    for (int i = 0; i < count && problem->empty(); ++i) {
        auto r = c.next_result(15s);
        if (!r || !r->ok()) {
            *problem = "result " + std::to_string(i) + ": " + (r ? r->describe() : "NULL");
            break;
        }
        values.push_back(r->value());
        if (c.next_result(15s)) *problem = "expected NULL after result " + std::to_string(i);
    }
    if (problem->empty()) {
        auto sync = c.next_result(15s);
        if (!sync || sync->status != PGRES_PIPELINE_SYNC) *problem = "no PIPELINE_SYNC";
    }
    PQexitPipelineMode(c.get());
    return values;
}

TEST_F(Protocol, PipelinedBatchesOfUnnamedStatementsInTransactionMode) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    for (int round = 0; round < 3; ++round) {
        for (PgConn* c : {&a, &b}) {
            std::string problem;
            int base = (c == &a ? 0 : 1000) + round * 100;
            std::vector<std::string> values = run_pipeline(*c, 25, base, &problem);
            ASSERT_TRUE(problem.empty()) << problem;
            ASSERT_EQ(values.size(), 25u);
            for (int i = 0; i < 25; ++i)
                EXPECT_EQ(values[i], std::to_string((base + i) * 2));
        }
    }
    EXPECT_TRUE(Ok(a.exec("select 1")));
}

TEST_F(Protocol, PipelineErrorAbortsUntilSyncOnly) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_EQ(PQenterPipelineMode(c.get()), 1);
    ASSERT_TRUE(c.send_params("select 1", {}));
    ASSERT_TRUE(c.send_params("select 1/$1::int", {"0"}));
    ASSERT_TRUE(c.send_params("select 3", {}));
    PQpipelineSync(c.get());
    ASSERT_TRUE(c.send_params("select 4", {}));
    PQpipelineSync(c.get());
    auto r1 = c.next_result();
    ASSERT_TRUE(r1 && r1->ok()) << (r1 ? r1->describe() : "NULL");
    EXPECT_FALSE(c.next_result());
    auto r2 = c.next_result();
    ASSERT_TRUE(r2);
    EXPECT_EQ(r2->sqlstate, "22012") << r2->describe();
    EXPECT_FALSE(c.next_result());
    auto r3 = c.next_result();
    ASSERT_TRUE(r3);
    EXPECT_EQ(r3->status, PGRES_PIPELINE_ABORTED) << r3->describe();
    EXPECT_FALSE(c.next_result());
    auto s1 = c.next_result();
    ASSERT_TRUE(s1);
    EXPECT_EQ(s1->status, PGRES_PIPELINE_SYNC);
    auto r4 = c.next_result();
    ASSERT_TRUE(r4 && r4->ok()) << (r4 ? r4->describe() : "NULL");
    EXPECT_EQ(r4->value(), "4");
    EXPECT_FALSE(c.next_result());
    auto s2 = c.next_result();
    ASSERT_TRUE(s2);
    EXPECT_EQ(s2->status, PGRES_PIPELINE_SYNC);
    PQexitPipelineMode(c.get());
}

TEST_F(Protocol, CopyFromStdinThroughPooler) {
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE copy_in")));
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult start = c.exec("COPY copy_in (id, name) FROM STDIN");
    ASSERT_EQ(start.status, PGRES_COPY_IN) << start.describe();
    std::string chunk;
    for (int i = 1; i <= 5000; ++i) {
        chunk += std::to_string(i) + "\tname " + std::to_string(i) + "\n";
        if (chunk.size() > 8000) {
            ASSERT_TRUE(c.put_copy_data(chunk));
            chunk.clear();
        }
    }
    ASSERT_TRUE(c.put_copy_data(chunk));
    ASSERT_TRUE(c.put_copy_end());
    QueryResult done = c.wait(20s);
    ASSERT_TRUE(done.ok()) << done.describe();
    EXPECT_EQ(pg().query_scalar("select count(*) || ':' || sum(id) from copy_in"), "5000:12502500");
    EXPECT_TRUE(Ok(c.exec("select 1")));
}

TEST_F(Protocol, CopyToStdoutThroughPooler) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult start = c.exec("COPY (select g, repeat('x', 100) from generate_series(1, 5000) g) TO STDOUT");
    ASSERT_EQ(start.status, PGRES_COPY_OUT) << start.describe();
    int rows = 0;
    std::string last;
    while (auto row = c.get_copy_row(20s)) {
        ++rows;
        last = *row;
    }
    EXPECT_FALSE(c.copy_failed());
    EXPECT_EQ(rows, 5000);
    EXPECT_EQ(last, "5000\t" + std::string(100, 'x') + "\n");
    QueryResult done = c.wait(20s);
    EXPECT_TRUE(done.ok()) << done.describe();
    EXPECT_TRUE(Ok(c.exec("select 1")));
}

TEST_F(Protocol, CopyAbortedByClientLeavesConnectionUsable) {
    ASSERT_TRUE(Ok(pg().exec("TRUNCATE copy_in")));
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_EQ(c.exec("COPY copy_in (id, name) FROM STDIN").status, PGRES_COPY_IN);
    ASSERT_TRUE(c.put_copy_data("1\tone\n"));
    ASSERT_TRUE(c.put_copy_end("client gave up"));
    QueryResult done = c.wait(20s);
    EXPECT_FALSE(done.ok());
    EXPECT_EQ(done.sqlstate, "57014") << done.describe();
    EXPECT_EQ(c.exec("select 7").value(), "7");
    EXPECT_EQ(pg().query_scalar("select count(*) from copy_in"), "0");
}

TEST_F(Protocol, LargeResultsPassThrough) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult big = c.exec("select repeat('y', 8 * 1024 * 1024)", 60s);
    ASSERT_TRUE(big.ok()) << big.describe();
    EXPECT_EQ(big.value().size(), 8u * 1024 * 1024);
    QueryResult many = c.exec("select g from generate_series(1, 200000) g", 60s);
    ASSERT_TRUE(many.ok()) << many.describe();
    EXPECT_EQ(many.rows.size(), 200000u);
    std::string long_query = "select length('" + std::string(4 * 1024 * 1024, 'z') + "')";
    EXPECT_EQ(c.exec(long_query, 60s).value(), std::to_string(4 * 1024 * 1024));
}

TEST_F(Protocol, ErrorInExtendedQueryLeavesConnectionUsable) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    QueryResult bad = c.exec_params("select 1 / $1::int", {"0"});
    EXPECT_EQ(bad.sqlstate, "22012") << bad.describe();
    QueryResult syntax = c.exec("selec 1");
    EXPECT_EQ(syntax.sqlstate, "42601") << syntax.describe();
    QueryResult good = c.exec_params("select $1::int", {"5"});
    EXPECT_EQ(good.value(), "5") << good.describe();
}

TEST_F(Protocol, SslRequestIsDeclinedAndSessionContinuesInClear) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp, "", "db", "sslmode=prefer"));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_EQ(PQsslInUse(c.get()), 0);
    EXPECT_EQ(c.exec("select 1").value(), "1");
}

TEST_F(Protocol, CancelRequestCancelsOnlyThatClientsQuery) {
    PoolguardProcess pooler(base_config("transaction", 2));
    ASSERT_TRUE(pooler.start());
    PgConn a(pooler.dsn(kApp)), b(pooler.dsn(kApp));
    ASSERT_TRUE(a.ok()) << a.connect_error();
    ASSERT_TRUE(b.ok()) << b.connect_error();
    ASSERT_TRUE(a.send("select pg_sleep(20)"));
    ASSERT_TRUE(b.send("select pg_sleep(2), 'b survived'"));
    ASSERT_TRUE(
        pg().wait_until("select count(*) = 2 from pg_stat_activity where usename = 'app' and "
                        "state = 'active' and query like 'select pg_sleep%'",
                        5s));
    std::string err;
    ASSERT_TRUE(a.cancel(&err)) << err;
    QueryResult ra = a.wait(10s);
    EXPECT_EQ(ra.sqlstate, "57014") << ra.describe();
    EXPECT_LT(ra.elapsed_ms, 5000) << ra.describe();
    QueryResult rb = b.wait(15s);
    ASSERT_TRUE(rb.ok()) << "b's query must not be cancelled: " << rb.describe();
    EXPECT_EQ(rb.value(0, 1), "b survived");
    EXPECT_EQ(a.exec("select 1").value(), "1");
}

TEST_F(Protocol, CancelRequestWithUnknownKeyCancelsNothing) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    ASSERT_TRUE(c.send("select pg_sleep(1), 'done'"));
    std::this_thread::sleep_for(200ms);
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(raw.send(RawConn::int32(16) + RawConn::int32(80877102) + RawConn::int32(12345) +
                         RawConn::int32(67890)));
    EXPECT_TRUE(raw.wait_closed(5s)) << "the pooler should close a cancel connection";
    QueryResult r = c.wait(10s);
    ASSERT_TRUE(r.ok()) << r.describe();
    EXPECT_EQ(r.value(0, 1), "done");
}

// After a protocol violation: ErrorResponse 08P01 and/or the connection closed, within `timeout`.
void expect_rejected(RawConn& raw, std::chrono::milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    std::string sqlstate;
    while (Clock::now() < deadline) {
        auto m =
            raw.read_message(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
        if (!m) break;
        if (m->type == 'E') {
            sqlstate = parse_error_fields(m->payload).sqlstate;
            break;
        }
    }
    if (!sqlstate.empty()) {
        EXPECT_EQ(sqlstate, "08P01");
    } else {
        EXPECT_TRUE(raw.eof()) << "neither an ErrorResponse nor a close within " << timeout.count() << " ms";
    }
}

void expect_pooler_still_serves(PoolguardProcess& pooler) {
    PgConn c(pooler.dsn(kApp));
    ASSERT_TRUE(c.ok()) << c.connect_error();
    EXPECT_EQ(c.exec("select 'still serving'").value(), "still serving");
}

TEST_F(Protocol, OversizedStartupPacketIsRejected) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn bystander(pooler.dsn(kApp));
    ASSERT_TRUE(bystander.ok()) << bystander.connect_error();
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(raw.send(RawConn::int32(100000000) + RawConn::int32(196608) + std::string("user\0app\0", 9)));
    expect_rejected(raw, 5s);
    EXPECT_EQ(bystander.exec("select 1").value(), "1");
    expect_pooler_still_serves(pooler);
}

TEST_F(Protocol, MessageWithInvalidLengthIsRejected) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    PgConn bystander(pooler.dsn(kApp));
    ASSERT_TRUE(bystander.ok()) << bystander.connect_error();
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    LoginOutcome login = raw_login(raw, kApp, "db", "");
    ASSERT_TRUE(login.ready) << login.describe();
    ASSERT_TRUE(raw.send(std::string("Q") + RawConn::int32(2)));
    expect_rejected(raw, 5s);
    EXPECT_EQ(bystander.exec("select 1").value(), "1");
    expect_pooler_still_serves(pooler);
}

TEST_F(Protocol, NonPostgresTrafficIsRejected) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(raw.send("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    expect_rejected(raw, 5s);
    expect_pooler_still_serves(pooler);
}

TEST_F(Protocol, UnknownProtocolVersionIsRejected) {
    PoolguardProcess pooler(base_config("transaction", 1));
    ASSERT_TRUE(pooler.start());
    RawConn raw;
    ASSERT_TRUE(raw.connect_tcp(pooler.host(), pooler.port()));
    ASSERT_TRUE(raw.send(RawConn::startup_packet({{"user", kApp}, {"database", "db"}}, 0x00020000)));
    auto deadline = Clock::now() + 5s;
    bool rejected = false;
    while (Clock::now() < deadline) {
        auto m = raw.read_message(1s);
        if (!m) {
            rejected = raw.eof();
            if (rejected) break;
            continue;
        }
        if (m->type == 'E') {
            rejected = true;
            break;
        }
        ASSERT_NE(m->type, 'Z') << "protocol 2.0 must not be accepted";
    }
    EXPECT_TRUE(rejected);
    expect_pooler_still_serves(pooler);
}

}  // namespace
}  // namespace itest
