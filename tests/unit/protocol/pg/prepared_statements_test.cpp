// Tests protocol/pg/prepared_statements against a simulated PostgreSQL server, scenario by scenario: pooled
// vs direct response streams. The random property test is prepared_statements_property_test.cpp.
#include "protocol/pg/prepared_statements.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "prepared_statements_harness.h"
#include "protocol/pg/messages.h"
#include "protocol/pg/wire.h"

// Counts heap allocations, to check that the steady-state path allocates nothing.
namespace {
size_t g_allocations = 0;
}  // namespace
// GCC cannot see that this operator new is malloc underneath.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
    ++g_allocations;
    void* p = std::malloc(n == 0 ? 1 : n);
    if (p == nullptr) std::abort();
    return p;
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
    std::free(p);
}
// Every form that pairs with the deletes above must be replaced too, or a sanitizer sees memory from its own
// allocator freed with free() (std::stable_sort's temporary buffer uses the nothrow form).
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
    ++g_allocations;
    return std::malloc(n == 0 ? 1 : n);
}
void* operator new[](std::size_t n) {
    ++g_allocations;
    void* p = std::malloc(n == 0 ? 1 : n);
    if (p == nullptr) std::abort();
    return p;
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
    ++g_allocations;
    return std::malloc(n == 0 ? 1 : n);
}
void operator delete[](void* p) noexcept {
    std::free(p);
}
void operator delete[](void* p, std::size_t) noexcept {
    std::free(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
    std::free(p);
}
#pragma GCC diagnostic pop

namespace poolguard::protocol::pg {
namespace {
using namespace prepared_testing;

// ---- deterministic scenarios ----

TEST(PreparedStatements, PrepareOnOneServerThenRunOnAnother) {
    Harness h;
    Server a(10), b(10);
    Client c;
    FakeServer ref;
    const std::vector<Msg> first = {parse_msg("s1", "insert x"), bind_msg("", "s1"), execute_msg(),
                                    sync_msg()};

    const std::string got1 = h.run(c, a, first);
    EXPECT_EQ(types(got1), "12CZ");
    EXPECT_EQ(got1, direct(ref, first));

    // Next transaction on B: the Bind triggers an injected Parse whose ParseComplete is swallowed.
    const std::string sent = h.send(c, b, kUse);
    const auto msgs = sent_messages(sent);
    ASSERT_EQ(msgs.size(), 4u);
    EXPECT_EQ(msgs[0].first, 'P');
    EXPECT_EQ(named(msgs[0]), "PGG_1");
    EXPECT_EQ(msgs[1].first, 'B');
    EXPECT_EQ(named(msgs[1]), "PGG_1");
    EXPECT_EQ(msgs[1].second.substr(7), bind_msg("", "s1").body.substr(4))
        << "Bind tail must be byte-identical";
    const size_t before = c.out.size();
    h.deliver(c, b);
    EXPECT_EQ(types(c.out.substr(before)), "2CZ");
    EXPECT_EQ(c.out.substr(before), direct(ref, kUse));

    // Back on A: nothing to prepare.
    a.fake.clear_received();
    EXPECT_EQ(h.run(c, a, kUse), direct(ref, kUse));
    ASSERT_EQ(a.fake.received().size(), 3u);
    EXPECT_EQ(a.fake.received()[0].first, 'B');
    EXPECT_EQ(h.stats().server_parses, 2u);
    EXPECT_EQ(h.stats().client_parses, 1u);
}

TEST(PreparedStatements, ParseOfAStatementTheServerHasIsAnsweredInPlace) {
    Harness h;
    Server a(10);
    Client c1, c2;
    h.run(c1, a, {parse_msg("s1", "select 1"), sync_msg()});

    a.fake.clear_received();
    FakeServer ref;
    const std::vector<Msg> msgs = {parse_msg("mine", "select 1"), bind_msg("", "mine"), execute_msg(),
                                   sync_msg()};
    const std::string got = h.run(c2, a, msgs);
    EXPECT_EQ(types(got), "12DCZ");
    EXPECT_EQ(got, direct(ref, msgs));
    for (const auto& [t, body] : a.fake.received())
        EXPECT_NE(t, 'P') << "the server already had the statement";

    // The fake ParseComplete of a lone Parse (nothing outstanding) is emitted at once.
    const size_t before = c2.out.size();
    h.send(c2, a, {parse_msg("again", "select 1"), flush_msg()});
    EXPECT_EQ(types(c2.out.substr(before)), "1");
    EXPECT_TRUE(a.queue.empty());
}

TEST(PreparedStatements, LruEvictionClosesAndReprepares) {
    Harness h;
    Server s(2);
    Client c;
    FakeServer ref;
    for (const char* q : {"select a", "select b"}) {
        const std::string name = std::string("s_") + q[7];
        const std::vector<Msg> m = {parse_msg(name, q), sync_msg()};
        EXPECT_EQ(h.run(c, s, m), direct(ref, m));
    }
    s.fake.clear_received();
    const std::vector<Msg> third = {parse_msg("s_c", "select c"), sync_msg()};
    const std::string got = h.run(c, s, third);
    EXPECT_EQ(types(got), "1Z") << "CloseComplete of the eviction must be swallowed";
    EXPECT_EQ(got, direct(ref, third));
    const auto& rx = s.fake.received();
    ASSERT_EQ(rx.size(), 3u);
    EXPECT_EQ(rx[0].first, 'C');
    EXPECT_EQ(named(rx[0]), "PGG_1");
    EXPECT_EQ(rx[1].first, 'P');
    EXPECT_EQ(named(rx[1]), "PGG_3");
    EXPECT_EQ(s.fake.statement_names(), (std::set<std::string>{"PGG_2", "PGG_3"}));

    // s_a was evicted: using it re-prepares it transparently (evicting the least recently used, s_b).
    s.fake.clear_received();
    const std::vector<Msg> use = {bind_msg("", "s_a"), execute_msg(), sync_msg()};
    const std::string again = h.run(c, s, use);
    EXPECT_EQ(types(again), "2DCZ");
    EXPECT_EQ(again, direct(ref, use));
    EXPECT_EQ(s.fake.statement_names(), (std::set<std::string>{"PGG_3", "PGG_4"}));
    EXPECT_EQ(h.stats().evictions, 2u);
    expect_tables_match(s);
}

TEST(PreparedStatements, CloseIsAnsweredAtItsPlace) {
    Harness h;
    Server s(10);
    Client c;
    FakeServer ref;
    h.run(c, s, {parse_msg("s1", "insert x"), sync_msg()});
    direct(ref, {parse_msg("s1", "insert x"), sync_msg()});

    const std::vector<Msg> msgs = {bind_msg("", "s1"), execute_msg(), close_msg('S', "s1"), sync_msg()};
    const std::string got = h.run(c, s, msgs);
    EXPECT_EQ(types(got), "2C3Z");
    EXPECT_EQ(got, direct(ref, msgs));
    EXPECT_EQ(c.statements.find("s1"), nullptr);
    EXPECT_EQ(s.statements.size(), 1u) << "the server keeps its copy for other clients";

    // Now unknown to the client: the server itself reports 26000 with the client's name.
    const std::string err = h.run(c, s, kUse);
    EXPECT_EQ(err, direct(ref, kUse));
    EXPECT_EQ(types(err), "EZ");
    EXPECT_EQ(first_error(err), "26000 prepared statement \"s1\" does not exist");
}

TEST(PreparedStatements, ErrorInPipelineDiscardsUpToSync) {
    Harness h;
    Server s(10);
    Client c, other;
    FakeServer ref;
    const std::vector<Msg> setup = {parse_msg("keep", "select k"), sync_msg()};
    h.run(c, s, setup);
    direct(ref, setup);
    h.run(other, s, {parse_msg("x", "select shared"), sync_msg()});

    // Execute fails; the Parse (which would be answered in place) and the Close after it are skipped.
    const std::vector<Msg> msgs = {parse_msg("f", "select oops"),   bind_msg("", "f"),      execute_msg(),
                                   parse_msg("y", "select shared"), close_msg('S', "keep"), sync_msg()};
    const std::string got = h.run(c, s, msgs);
    EXPECT_EQ(types(got), "12EZ");
    EXPECT_EQ(got, direct(ref, msgs));
    EXPECT_EQ(c.statements.find("y"), nullptr) << "a skipped Parse creates nothing";
    EXPECT_NE(c.statements.find("keep"), nullptr) << "a skipped Close closes nothing";
    const std::vector<Msg> after = {bind_msg("", "keep"), execute_msg(), bind_msg("", "y"), sync_msg()};
    EXPECT_EQ(h.run(c, s, after), direct(ref, after));
}

TEST(PreparedStatements, ErrorArrivingBeforeTheSyncIsSent) {
    Harness h;
    Server s(10);
    Client c, other;
    FakeServer ref;
    h.run(other, s, {parse_msg("x", "select shared"), sync_msg()});
    const std::vector<Msg> setup = {parse_msg("keep", "select k"), sync_msg()};
    h.run(c, s, setup);
    direct(ref, setup);

    const std::vector<Msg> head = {bind_msg("", "keep"), execute_msg("nope"), flush_msg()};
    const std::vector<Msg> tail = {parse_msg("y", "select shared"), close_msg('S', "keep"),
                                   parse_msg("z", "select new"), sync_msg()};
    const size_t before = c.out.size();
    h.send(c, s, head);
    h.deliver(c, s);
    EXPECT_TRUE(s.queue.skipping());
    h.send(c, s, tail);
    EXPECT_FALSE(s.queue.skipping());
    h.deliver(c, s);
    std::vector<Msg> all = head;
    all.insert(all.end(), tail.begin(), tail.end());
    EXPECT_EQ(types(c.out.substr(before)), "2EZ");
    EXPECT_EQ(c.out.substr(before), direct(ref, all));
    EXPECT_EQ(c.statements.find("y"), nullptr);
    EXPECT_EQ(c.statements.find("z"), nullptr);
    EXPECT_NE(c.statements.find("keep"), nullptr);
    expect_tables_match(s);
}

TEST(PreparedStatements, DescribeStatement) {
    Harness h;
    Server a(10), b(10);
    Client c;
    FakeServer ref;
    const std::vector<Msg> setup = {parse_msg("s1", "select p", {23}), sync_msg()};
    h.run(c, a, setup);
    direct(ref, setup);
    const std::vector<Msg> msgs = {describe_msg('S', "s1"), sync_msg()};
    const std::string got = h.run(c, b, msgs);
    EXPECT_EQ(types(got), "tTZ");
    EXPECT_EQ(got, direct(ref, msgs));
    const std::vector<Msg> portal = {bind_msg("", "s1"), describe_msg('P', ""), execute_msg(), sync_msg()};
    EXPECT_EQ(h.run(c, b, portal), direct(ref, portal));
}

TEST(PreparedStatements, DuplicateNameFailsLikePostgres) {
    Harness h;
    Server a(10), b(10);
    Client c;
    FakeServer ref;
    const std::vector<Msg> setup = {parse_msg("s1", "select one"), sync_msg()};
    h.run(c, a, setup);
    direct(ref, setup);
    const std::vector<Msg> dup = {parse_msg("s1", "select two"), bind_msg("", "s1"), execute_msg(),
                                  sync_msg()};
    const std::string got = h.run(c, b, dup);
    EXPECT_EQ(types(got), "EZ");
    EXPECT_EQ(got, direct(ref, dup));
    EXPECT_EQ(first_error(got), "42P05 prepared statement \"s1\" already exists");
    EXPECT_EQ(h.run(c, b, kUse), direct(ref, kUse)) << "the old definition stays";
    expect_tables_match(b);
}

TEST(PreparedStatements, InjectedParseFailureIsForwarded) {
    Harness h;
    Server a(10), b(10, "gone");
    Client c;
    h.run(c, a, {parse_msg("s1", "select gone"), sync_msg()});
    const std::string got = h.run(c, b, kUse);
    EXPECT_EQ(types(got), "EZ");
    EXPECT_EQ(first_error(got), "42P01 relation \"gone\" does not exist");
    EXPECT_EQ(b.statements.size(), 0u);
    EXPECT_NE(c.statements.find("s1"), nullptr);
    expect_tables_match(b);
}

TEST(PreparedStatements, ServerNamesAreNotReachableByOtherClients) {
    Harness h;
    Server s(10);
    Client owner, intruder;
    FakeServer ref;
    h.run(owner, s, {parse_msg("s1", "select secret"), sync_msg()});
    ASSERT_EQ(s.statements.names(), std::vector<std::string>{"PGG_1"});
    for (const auto& msgs : {std::vector<Msg>{bind_msg("", "PGG_1"), execute_msg(), sync_msg()},
                             std::vector<Msg>{describe_msg('S', "PGG_1"), sync_msg()}}) {
        const std::string got = h.run(intruder, s, msgs);
        EXPECT_EQ(got, direct(ref, msgs));
        EXPECT_EQ(first_error(got), "26000 prepared statement \"PGG_1\" does not exist");
    }
    const std::vector<Msg> close = {close_msg('S', "PGG_1"), sync_msg()};
    EXPECT_EQ(h.run(intruder, s, close), direct(ref, close));
    EXPECT_EQ(s.fake.statement_names(), std::set<std::string>{"PGG_1"});
}

TEST(PreparedStatements, UnnamedStatementsPassThroughUnchanged) {
    Harness h;
    Server s(10);
    Client c;
    FakeServer ref;
    const std::vector<Msg> msgs = {
        parse_msg("", "select u"), bind_msg("", ""),   describe_msg('P', ""), execute_msg(),
        close_msg('S', ""),        close_msg('P', ""), flush_msg(),           sync_msg()};
    const std::string sent = h.send(c, s, msgs);
    EXPECT_EQ(sent, all_bytes(msgs));
    h.deliver(c, s);
    EXPECT_EQ(c.out, direct(ref, msgs));
    EXPECT_EQ(c.statements.size(), 0u);
    EXPECT_EQ(s.statements.size(), 0u);
}

TEST(PreparedStatements, DiscardAllForgetsEverything) {
    Harness h;
    Server s(10);
    Client c;
    FakeServer ref;
    const std::vector<Msg> setup = {parse_msg("s1", "select d"), sync_msg(), query_msg("DISCARD ALL")};
    EXPECT_EQ(h.run(c, s, setup), direct(ref, setup));
    EXPECT_EQ(c.statements.size(), 0u);
    EXPECT_EQ(s.statements.size(), 0u);
    EXPECT_EQ(h.run(c, s, kUse), direct(ref, kUse));
    const std::vector<Msg> again = {parse_msg("s1", "select d"), bind_msg("", "s1"), execute_msg(),
                                    sync_msg()};
    EXPECT_EQ(h.run(c, s, again), direct(ref, again));
    expect_tables_match(s);
}

TEST(PreparedStatements, SkippedEvictionIsClosedLater) {
    Harness h;
    Server s(1);
    Client c;
    FakeServer ref;
    const std::vector<Msg> setup = {parse_msg("s1", "select a"), sync_msg()};
    h.run(c, s, setup);
    direct(ref, setup);
    // The Execute fails, so the eviction Close and the Parse behind it are skipped.
    const std::vector<Msg> msgs = {execute_msg("nope"), parse_msg("s2", "select b"), sync_msg()};
    EXPECT_EQ(h.run(c, s, msgs), direct(ref, msgs));
    EXPECT_EQ(s.statements.pending_closes(), std::vector<std::string>{"PGG_1"});
    expect_tables_match(s);
    const std::vector<Msg> retry = {parse_msg("s2", "select b"), bind_msg("", "s2"), execute_msg(),
                                    sync_msg()};
    EXPECT_EQ(h.run(c, s, retry), direct(ref, retry));
    EXPECT_TRUE(s.statements.pending_closes().empty());
    expect_tables_match(s);
    EXPECT_EQ(s.fake.statement_names().size(), 1u);
}

TEST(PreparedStatements, MalformedMessagesAreProtocolViolations) {
    Rewriter rw;
    ClientStatements c;
    ServerStatements s(4);
    ResponseQueue q;
    const std::vector<Msg> bad = {
        {'P', "s1"},                             // no terminator
        {'P', "s1\0select 1\0"s},                // no parameter count
        {'P', "s1\0select 1\0\0\2\0\0\0\x17"s},  // 2 OIDs announced, 1 present
        {'P', "s1\0select 1\0\0\0junk"s},        // trailing bytes
        {'B', "portal"},                         // truncated
        {'B', "\0s1"s},                          // statement name without terminator
        {'D', ""},                               // empty
        {'D', "Xs1\0"s},                         // bad subtype
        {'D', "Ss1\0extra"s},                    // trailing bytes
        {'C', "S"},                              // no name
        {'C', "Qs1\0"s},                         // bad subtype
    };
    for (const auto& m : bad) {
        std::string out;
        const auto st = rw.on_client_message(m.type, m.body, c, s, q, out);
        ASSERT_FALSE(st.has_value()) << m.type << " accepted";
        EXPECT_EQ(st.error().sqlstate, "08P01");
        EXPECT_TRUE(out.empty());
        EXPECT_TRUE(q.empty());
    }
    EXPECT_EQ(c.size(), 0u);
    EXPECT_EQ(s.size(), 0u);
}

TEST(PreparedStatements, UnexpectedServerMessagesAreReported) {
    ServerStatements s(4);
    ResponseQueue q;
    EXPECT_EQ(q.on_server_message('Z', "I", s, nullptr), Disposition::kOutOfSync);
    EXPECT_EQ(q.on_server_message('N', "", s, nullptr), Disposition::kForward);
    EXPECT_EQ(q.on_server_message('E', "", s, nullptr), Disposition::kForward);
    PendingResponse parse;
    parse.kind = RequestKind::kParse;
    q.push(parse, s, nullptr);
    EXPECT_EQ(q.on_server_message('2', "", s, nullptr), Disposition::kOutOfSync);
    EXPECT_EQ(q.on_server_message('S', "", s, nullptr), Disposition::kForward);
    EXPECT_EQ(q.on_server_message('1', "", s, nullptr), Disposition::kForward);
    PendingResponse query;
    query.kind = RequestKind::kQuery;
    q.push(query, s, nullptr);
    for (char t : {'T', 'D', 'C', 'E', 'I', 'N', 'G', 'H', 'd', 'c'})
        EXPECT_EQ(q.on_server_message(t, "", s, nullptr), Disposition::kForward) << t;
    EXPECT_FALSE(q.empty());
    EXPECT_EQ(q.on_server_message('Z', "I", s, nullptr), Disposition::kForward);
    EXPECT_TRUE(q.empty());
}

TEST(PreparedStatements, QueueSurvivesItsClient) {
    Harness h;
    Server s(10);
    auto c = std::make_unique<Client>();
    h.send(*c, s, {parse_msg("s1", "select a"), bind_msg("", "s1"), execute_msg(), sync_msg()});
    c.reset();  // the client disconnected: responses still arrive and are accounted for
    while (s.fake.has_output()) {
        const std::string m = s.fake.pop_message();
        EXPECT_NE(s.queue.on_server_message(m[0], std::string_view(m).substr(5), s.statements, nullptr),
                  Disposition::kOutOfSync);
        s.queue.take_ready_fakes();
    }
    EXPECT_TRUE(s.queue.empty());
    EXPECT_EQ(s.statements.size(), 1u);
}

TEST(PreparedStatements, CommitFailureAtSync) {
    Harness h;
    Server s(10);
    Client c;
    FakeServer ref;
    const std::vector<Msg> msgs = {parse_msg("s1", "update deferred"), bind_msg("", "s1"), execute_msg(),
                                   close_msg('S', "other"), sync_msg()};
    const std::string got = h.run(c, s, msgs);
    EXPECT_EQ(types(got), "12C3EZ");
    EXPECT_EQ(got, direct(ref, msgs));
    EXPECT_NE(c.statements.find("s1"), nullptr);
}

TEST(PreparedStatements, StaleServerCacheIsRepaired) {
    Harness h;
    Server s(10);
    Client c;
    h.run(c, s, {parse_msg("s1", "select one"), sync_msg()});
    // Something outside poolguard's view dropped PGG_1 (e.g. the client's own SQL DEALLOCATE "PGG_1").
    s.fake.feed(close_msg('S', "PGG_1").bytes());
    s.fake.take_output();
    // The duplicate-name probe then succeeds: the client sees ParseComplete (PostgreSQL would have said
    // 42P05), and poolguard stops trusting the name.
    EXPECT_EQ(types(h.run(c, s, {parse_msg("s1", "select two"), sync_msg()})), "1Z");
    EXPECT_EQ(s.statements.size(), 0u);
    EXPECT_EQ(s.statements.pending_closes(), std::vector<std::string>{"PGG_1"});
    const std::string got = h.run(c, s, kUse);
    EXPECT_EQ(types(got), "2DCZ");
    EXPECT_NE(got.find("select one"), std::string::npos) << "the client's definition is still the first one";
    expect_tables_match(s);
}

TEST(PreparedStatements, LateFakesAreNotLost) {
    ServerStatements s(4);
    ResponseQueue q;
    PendingResponse fake;
    fake.kind = RequestKind::kParse;
    fake.action = ResponseAction::kFake;
    fake.bytes = "1\0\0\0\4"s;
    PendingResponse sync;
    sync.kind = RequestKind::kSync;
    q.push(fake, s, nullptr);
    q.push(sync, s, nullptr);
    // The relay forgot append_ready_fakes(): the fake is emitted right after this message rather than lost.
    EXPECT_EQ(q.on_server_message('Z', "I", s, nullptr), Disposition::kForward);
    EXPECT_FALSE(q.empty());
    EXPECT_EQ(q.take_ready_fakes(), "1\0\0\0\4"s);
    EXPECT_TRUE(q.empty());
}

TEST(PreparedStatements, SteadyStateBindExecuteSyncDoesNotAllocate) {
    Rewriter rw;
    ClientStatements c;
    ServerStatements s(8);
    ResponseQueue q;
    std::string to_server, to_client;
    const Msg parse = parse_msg("s1", "select 1 from pgbench_accounts where aid = $1", {23});
    ASSERT_TRUE(rw.on_client_message(parse.type, parse.body, c, s, q, to_server).has_value());
    ASSERT_EQ(q.on_server_message('1', "", s, &c), Disposition::kForward);
    const std::vector<Msg> txn = {bind_msg("", "s1"), execute_msg(), sync_msg()};
    const std::string z = "I";
    size_t allocations = 0;
    for (int i = 0; i < 100; ++i) {
        to_server.clear();
        to_client.clear();
        const size_t before = g_allocations;
        for (const auto& m : txn)
            ASSERT_TRUE(rw.on_client_message(m.type, m.body, c, s, q, to_server).has_value());
        q.append_ready_fakes(to_client);
        for (char t : {'2', 'D', 'C', 'Z'}) {
            ASSERT_EQ(q.on_server_message(t, t == 'Z' ? std::string_view(z) : std::string_view(), s, &c),
                      Disposition::kForward);
            q.append_ready_fakes(to_client);
        }
        ASSERT_TRUE(q.empty());
        if (i >= 2) allocations += g_allocations - before;  // after warm-up (buffers, ring)
    }
    EXPECT_EQ(allocations, 0u);
    EXPECT_EQ(sent_messages(to_server).at(0).first, 'B');
}

TEST(PreparedStatements, TablesBasics) {
    ClientStatements c;
    auto d1 = StatementDef::from_parse_rest("select 1\0\0\1\0\0\0\x17"s);
    ASSERT_TRUE(d1.has_value());
    EXPECT_EQ((*d1)->query(), "select 1");
    EXPECT_EQ((*d1)->param_count(), 1u);
    EXPECT_FALSE(c.on_parse("", *d1));
    EXPECT_TRUE(c.on_parse("a", *d1));
    EXPECT_FALSE(c.on_parse("a", *d1));
    ASSERT_NE(c.find("a"), nullptr);
    EXPECT_EQ(c.close("a"), *d1);
    EXPECT_EQ(c.close("a"), nullptr);

    ServerStatements s(2);
    auto d2 = StatementDef::from_parse_rest("select 1\0\0\1\0\0\0\x17"s);  // equal content, other object
    std::vector<std::string> evicted;
    EXPECT_EQ(s.insert(*d1, evicted).name, "PGG_1");
    ASSERT_NE(s.find(**d2), nullptr);
    EXPECT_EQ(s.find(**d2)->name, "PGG_1");
    s.clear();
    EXPECT_EQ(s.find(**d1), nullptr);
    EXPECT_EQ(s.insert(*d1, evicted).name, "PGG_2") << "names are never reused on a connection";
    EXPECT_TRUE(evicted.empty());
    EXPECT_TRUE(is_server_statement_name("PGG_12"));
    EXPECT_FALSE(is_server_statement_name("PGG_"));
    EXPECT_FALSE(is_server_statement_name("PGG_1a"));
    EXPECT_FALSE(is_server_statement_name("s1"));
}

}  // namespace
}  // namespace poolguard::protocol::pg
