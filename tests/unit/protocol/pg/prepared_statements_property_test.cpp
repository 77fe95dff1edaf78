// Property test of protocol/pg/prepared_statements: random batches from many clients over random servers with
// small caches give each client the same bytes as talking to one PostgreSQL server directly.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "prepared_statements_harness.h"

namespace poolguard::protocol::pg {
namespace {

using namespace prepared_testing;

// ---- property: pooled over random servers == direct ----

struct SimClient {
    ClientStatements statements;
    FakeServer direct;
    std::vector<std::vector<Msg>> batches;
    size_t batch = 0;
    size_t pos = 0;
    int server = -1;
    std::string expected;
    std::string actual;
};

std::vector<Msg> random_batch(std::mt19937& rng) {
    static const std::vector<std::string> kQueries = {"select a",    "select b",   "insert c",
                                                      "select oops", "select bad", "update deferred",
                                                      "select e",    "select f"};
    const auto pick = [&](size_t n) { return static_cast<size_t>(rng() % n); };
    const auto name = [&] { return "s" + std::to_string(pick(6)); };
    if (pick(20) == 0) return {query_msg(pick(3) == 0 ? "DISCARD ALL" : "select q")};
    std::vector<Msg> b;
    bool unnamed = false;
    const size_t n = 1 + pick(7);
    for (size_t i = 0; i < n; ++i) {
        const size_t r = pick(100);
        if (r < 25) {
            const bool anon = pick(5) == 0;
            unnamed |= anon;
            b.push_back(parse_msg(anon ? "" : name(), kQueries[pick(kQueries.size())],
                                  pick(3) == 0 ? std::vector<uint32_t>{23} : std::vector<uint32_t>{}));
        } else if (r < 55) {
            b.push_back(bind_msg("", unnamed && pick(3) == 0 ? "" : name()));
            if (pick(10) < 7) b.push_back(execute_msg());
        } else if (r < 62) {
            b.push_back(execute_msg());
        } else if (r < 72) {
            b.push_back(describe_msg('S', name()));
        } else if (r < 76) {
            b.push_back(describe_msg('P', ""));
        } else if (r < 88) {
            b.push_back(close_msg('S', name()));
        } else if (r < 94) {
            b.push_back(flush_msg());
        } else {
            b.push_back(close_msg('P', ""));
        }
    }
    b.push_back(sync_msg());
    return b;
}

std::string describe_batch(const std::vector<Msg>& b) {
    std::string out;
    for (const auto& m : b) {
        out.push_back(m.type);
        if (m.type == 'P' || m.type == 'B' || m.type == 'D' || m.type == 'C') {
            out += "(" + named({m.type, m.body}) + ")";
        }
        out.push_back(' ');
    }
    return out;
}

void run_property(uint32_t seed, size_t clients, size_t servers, size_t batches, size_t capacity) {
    std::mt19937 rng(seed);
    Rewriter rw;
    std::vector<std::unique_ptr<Server>> pool;
    for (size_t i = 0; i < servers; ++i)
        pool.push_back(std::make_unique<Server>(capacity));
    std::vector<bool> busy(servers, false);
    std::vector<SimClient> sim(clients);
    std::vector<size_t> active;
    for (size_t i = 0; i < clients; ++i) {
        for (size_t j = 0; j < batches; ++j)
            sim[i].batches.push_back(random_batch(rng));
        active.push_back(i);
    }
    size_t steps = 0;
    while (!active.empty()) {
        ASSERT_LT(++steps, 10'000'000u);
        const size_t slot = rng() % active.size();
        SimClient& c = sim[active[slot]];
        if (c.server < 0) {
            const size_t start = rng() % servers;
            for (size_t k = 0; k < servers && c.server < 0; ++k) {
                const size_t i = (start + k) % servers;
                if (!busy[i]) {
                    busy[i] = true;
                    c.server = static_cast<int>(i);
                }
            }
            if (c.server < 0) continue;
            c.direct.feed(all_bytes(c.batches[c.batch]));
            c.expected = c.direct.take_output();
            c.actual.clear();
        }
        Server& s = *pool[static_cast<size_t>(c.server)];
        const auto& batch = c.batches[c.batch];
        const bool can_send = c.pos < batch.size();
        const bool can_receive = s.fake.has_output();
        if (can_send && (!can_receive || rng() % 2 == 0)) {
            const Msg& m = batch[c.pos++];
            std::string to_server;
            if (!Rewriter::must_inspect(m.type) && rng() % 2 == 0) {
                to_server = m.bytes();  // the relay forwards it itself
                rw.on_passthrough(m.type, c.statements, s.statements, s.queue);
            } else {
                const auto st =
                    rw.on_client_message(m.type, m.body, c.statements, s.statements, s.queue, to_server);
                ASSERT_TRUE(st.has_value()) << st.error().message;
            }
            s.fake.feed(to_server);
            s.queue.append_ready_fakes(c.actual);
        } else if (can_receive) {
            const std::string m = s.fake.pop_message();
            const Disposition d =
                s.queue.on_server_message(m[0], std::string_view(m).substr(5), s.statements, &c.statements);
            ASSERT_NE(d, Disposition::kOutOfSync) << "seed " << seed << " message " << m[0];
            if (d == Disposition::kForward) c.actual += m;
            s.queue.append_ready_fakes(c.actual);
        } else {
            // The transaction is over: compare, check the server tables, release the server.
            ASSERT_TRUE(s.queue.empty());
            ASSERT_EQ(types(c.actual), types(c.expected))
                << "seed " << seed << " client " << active[slot] << " batch " << c.batch << ": "
                << describe_batch(batch);
            ASSERT_EQ(c.actual, c.expected) << "seed " << seed << ": " << describe_batch(batch);
            expect_tables_match(s);
            busy[static_cast<size_t>(c.server)] = false;
            c.server = -1;
            c.pos = 0;
            if (++c.batch == c.batches.size()) {
                active[slot] = active.back();
                active.pop_back();
            }
        }
    }
    const auto& st = rw.stats();
    EXPECT_GT(st.client_parses, 0u);
    EXPECT_GT(st.server_parses, 0u);
    EXPECT_GT(st.evictions, 0u);
}

TEST(PreparedStatementsProperty, PooledEqualsDirect) {
    for (uint32_t seed = 1; seed <= 5; ++seed) {
        run_property(seed, 100, 10, 20, 3);
        if (HasFatalFailure()) return;
    }
}

TEST(PreparedStatementsProperty, TinyCacheManyServers) {
    for (uint32_t seed = 100; seed <= 102; ++seed) {
        run_property(seed, 30, 10, 30, 1);
        if (HasFatalFailure()) return;
    }
}

}  // namespace
}  // namespace poolguard::protocol::pg
