// Owns the codec microbenchmarks (Google Benchmark): framing a pgbench -S server response stream, the
// relay's ReadyForQuery / response tracking per message, and the Bind rewriting of named prepared statements.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/pg/frame_scanner.h"
#include "protocol/pg/messages.h"
#include "protocol/pg/prepared_statements.h"
#include "protocol/pg/wire.h"

namespace pg = poolguard::protocol::pg;

namespace {

// What PostgreSQL answers to pgbench -S in simple protocol: RowDescription (abalance int4), one DataRow,
// CommandComplete "SELECT 1", ReadyForQuery 'I'.
std::string select_response() {
    std::string out;
    pg::MessageBuilder t(out, 'T');
    t.i16(1).cstr("abalance").i32(16397).i16(3).i32(23).i16(4).i32(0xffffffff).i16(0);
    t.finish();
    pg::MessageBuilder d(out, 'D');
    d.i16(1).i32(4).bytes("1234");
    d.finish();
    pg::append_command_complete(out, "SELECT 1");
    pg::append_ready_for_query(out, 'I');
    return out;
}

// The same answer in extended protocol with a prepared statement: BindComplete, DataRow, CommandComplete, Z.
std::string prepared_response() {
    std::string out;
    pg::MessageBuilder b(out, '2');
    b.finish();
    pg::MessageBuilder d(out, 'D');
    d.i16(1).i32(4).bytes("1234");
    d.finish();
    pg::append_command_complete(out, "SELECT 1");
    pg::append_ready_for_query(out, 'I');
    return out;
}

// The server side scanner as ServerConnection configures it.
pg::FrameScanner server_scanner() {
    pg::FrameScanner s(0x7fffffff, 16 << 20);
    for (char t : {'Z', 'S', 'E', 'G', 'K', 'C'})
        s.set_whole(t);
    return s;
}

// A read of `per_read` whole responses, as one recv() would deliver them under load.
std::string stream_of(const std::string& one, int per_read) {
    std::string out;
    for (int i = 0; i < per_read; ++i)
        out += one;
    return out;
}

// Framing only: split the stream into segments until it is used up.
void BM_FrameScanner_SelectResponses(benchmark::State& state) {
    const std::string stream = stream_of(select_response(), static_cast<int>(state.range(0)));
    auto scanner = server_scanner();
    int64_t messages = 0;
    for (auto _ : state) {
        std::string_view v = stream;
        while (!v.empty()) {
            const auto seg = scanner.next(v);
            if (seg.kind == pg::SegmentKind::kNeedMore || seg.kind == pg::SegmentKind::kError) std::abort();
            benchmark::DoNotOptimize(seg.type);
            v.remove_prefix(seg.bytes.size());
            ++messages;
        }
    }
    state.SetItemsProcessed(messages);
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(stream.size()));
}
BENCHMARK(BM_FrameScanner_SelectResponses)->Arg(1)->Arg(16);

// Framing plus what the relay does per message without prepared-statement tracking: find each
// ReadyForQuery, read its transaction status and decide where the bytes up to it go.
void BM_ReadyForQueryTracking(benchmark::State& state) {
    const std::string stream = stream_of(select_response(), 16);
    auto scanner = server_scanner();
    int64_t transactions = 0;
    for (auto _ : state) {
        std::string_view v = stream;
        size_t forward = 0;
        char tx_status = 0;
        while (forward < v.size()) {
            const auto seg = scanner.next(v.substr(forward));
            if (seg.kind == pg::SegmentKind::kNeedMore || seg.kind == pg::SegmentKind::kError) std::abort();
            forward += seg.bytes.size();
            if (seg.kind == pg::SegmentKind::kWhole && seg.type == 'Z') {
                const auto body = seg.body();
                tx_status = body.empty() ? 'I' : body[0];
                ++transactions;
            }
        }
        benchmark::DoNotOptimize(tx_status);
    }
    state.SetItemsProcessed(transactions);
}
BENCHMARK(BM_ReadyForQueryTracking);

// The response queue's per-message accounting when prepared-statement tracking is on (the default in
// transaction mode): one simple Query and its four response messages.
void BM_ResponseQueue_SimpleQuery(benchmark::State& state) {
    pg::ClientStatements client;
    pg::ServerStatements server(200);
    pg::ResponseQueue queue;
    pg::Rewriter rewriter;
    std::string fakes;
    for (auto _ : state) {
        rewriter.on_passthrough('Q', client, server, queue);
        queue.append_ready_fakes(fakes);
        for (char t : {'T', 'D'})
            benchmark::DoNotOptimize(queue.on_server_message(t, {}, server, &client));
        benchmark::DoNotOptimize(queue.on_server_message('C', "SELECT 1", server, &client));
        benchmark::DoNotOptimize(queue.on_server_message('Z', "I", server, &client));
        queue.append_ready_fakes(fakes);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ResponseQueue_SimpleQuery);

std::string parse_body(std::string_view name, std::string_view sql) {
    std::string body;
    pg::MessageBuilder p(body, 0);
    p.cstr(name).cstr(sql).i16(1).i32(23);
    return body.substr(4);  // MessageBuilder with type 0 still writes a length
}

std::string bind_body(std::string_view statement, std::string_view value) {
    std::string body;
    pg::MessageBuilder b(body, 0);
    b.cstr("").cstr(statement).i16(0).i16(1).i32(static_cast<uint32_t>(value.size())).bytes(value).i16(0);
    return body.substr(4);
}

// pgbench -M prepared after its first transaction: Bind P_0 / Execute / Sync, with P_0 already prepared on
// the server under poolguard's name. Measures the Bind rewrite (client name -> server name), the queueing of
// the expected responses and their accounting when BindComplete, DataRow, CommandComplete, Z come back.
void BM_BindRewrite_PreparedSelect(benchmark::State& state) {
    pg::ClientStatements client;
    pg::ServerStatements server(200);
    pg::ResponseQueue queue;
    pg::Rewriter rewriter;
    std::string to_server;
    std::string fakes;
    const std::string sql = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";
    // Parse P_0 once (forwarded as PGG_1, answered by the server).
    {
        const std::string body = parse_body("P_0", sql);
        if (!rewriter.on_client_message('P', body, client, server, queue, to_server)) std::abort();
        rewriter.on_passthrough('S', client, server, queue);
        queue.append_ready_fakes(fakes);
        for (char t : {'1', 'Z'})
            if (queue.on_server_message(t, t == 'Z' ? "I" : "", server, &client) != pg::Disposition::kForward)
                std::abort();
    }
    const std::string bind = bind_body("P_0", "123456");
    const std::string response = prepared_response();
    int64_t bytes = 0;
    for (auto _ : state) {
        to_server.clear();
        if (!rewriter.on_client_message('B', bind, client, server, queue, to_server)) std::abort();
        rewriter.on_passthrough('E', client, server, queue);
        rewriter.on_passthrough('S', client, server, queue);
        queue.append_ready_fakes(fakes);
        bytes += static_cast<int64_t>(to_server.size());
        for (char t : {'2', 'D'})
            benchmark::DoNotOptimize(queue.on_server_message(t, {}, server, &client));
        benchmark::DoNotOptimize(queue.on_server_message('C', "SELECT 1", server, &client));
        benchmark::DoNotOptimize(queue.on_server_message('Z', "I", server, &client));
        queue.append_ready_fakes(fakes);
    }
    if (!fakes.empty()) std::abort();  // nothing of poolguard's own is due in this exchange
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
    state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_BindRewrite_PreparedSelect);

}  // namespace

BENCHMARK_MAIN();
