// Tests protocol/pg/prepared_statements against a simulated PostgreSQL server: pooled vs direct response
// streams.
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

using namespace std::string_literals;

// ---- frontend messages ----

struct Msg {
    char type = 0;
    std::string body;

    std::string bytes() const {
        std::string out;
        MessageBuilder m(out, type);
        m.bytes(body);
        m.finish();
        return out;
    }
};

Msg parse_msg(std::string_view name, std::string_view query, const std::vector<uint32_t>& oids = {}) {
    Msg m{'P', {}};
    m.body.append(name).push_back('\0');
    m.body.append(query).push_back('\0');
    append_be16(m.body, static_cast<uint16_t>(oids.size()));
    for (uint32_t oid : oids)
        append_be32(m.body, oid);
    return m;
}

// A Bind with one text parameter "42", so that the bytes after the statement name are not trivial.
Msg bind_msg(std::string_view portal, std::string_view stmt) {
    Msg m{'B', {}};
    m.body.append(portal).push_back('\0');
    m.body.append(stmt).push_back('\0');
    append_be16(m.body, 1);  // one parameter format code
    append_be16(m.body, 0);  // text
    append_be16(m.body, 1);  // one parameter
    append_be32(m.body, 2);
    m.body += "42";
    append_be16(m.body, 0);  // result formats
    return m;
}

Msg describe_msg(char what, std::string_view name) {
    Msg m{'D', std::string(1, what)};
    m.body.append(name).push_back('\0');
    return m;
}

Msg close_msg(char what, std::string_view name) {
    Msg m{'C', std::string(1, what)};
    m.body.append(name).push_back('\0');
    return m;
}

Msg execute_msg(std::string_view portal = "") {
    Msg m{'E', {}};
    m.body.append(portal).push_back('\0');
    append_be32(m.body, 0);
    return m;
}

Msg sync_msg() {
    return Msg{'S', {}};
}
Msg flush_msg() {
    return Msg{'H', {}};
}
Msg query_msg(std::string_view sql) {
    return Msg{'Q', std::string(sql) + '\0'};
}

std::string all_bytes(const std::vector<Msg>& msgs) {
    std::string out;
    for (const auto& m : msgs)
        out += m.bytes();
    return out;
}

// ---- backend byte streams ----

std::vector<std::pair<char, std::string>> split_messages(std::string_view bytes) {
    std::vector<std::pair<char, std::string>> out;
    while (bytes.size() >= 5) {
        const uint32_t len = read_be32(bytes.data() + 1);
        if (len < 4 || bytes.size() < 1 + size_t{len}) break;
        out.emplace_back(bytes[0], std::string(bytes.substr(5, len - 4)));
        bytes.remove_prefix(1 + size_t{len});
    }
    EXPECT_TRUE(bytes.empty()) << "trailing partial message";
    return out;
}

// The message types of a stream, e.g. "12CZ".
std::string types(std::string_view bytes) {
    std::string out;
    for (const auto& [t, body] : split_messages(bytes))
        out.push_back(t);
    return out;
}

// The SQLSTATE and message of the first ErrorResponse in a stream.
std::string first_error(std::string_view bytes) {
    for (const auto& [t, body] : split_messages(bytes)) {
        if (t == 'E') {
            const auto e = parse_error_fields(body);
            return e.sqlstate + " " + e.message;
        }
    }
    return {};
}

// ---- a simulated PostgreSQL server ----

// Keeps its own named statements and portals, answers the extended protocol like PostgreSQL (including
// "skip until Sync" after an error), fails queries containing "bad" at Parse and "oops" at Execute, and
// queries containing `broken` at Parse (a table this server lacks), and fails the commit at Sync after
// executing a query containing "deferred" (a deferred constraint).
class FakeServer {
  public:
    explicit FakeServer(std::string broken = {}) : broken_(std::move(broken)) {}

    void feed(std::string_view bytes) {
        in_.append(bytes);
        while (in_.size() >= 5) {
            const uint32_t len = read_be32(in_.data() + 1);
            ASSERT_GE(len, 4u);
            if (in_.size() < 1 + size_t{len}) break;
            const char type = in_[0];
            const std::string body = in_.substr(5, len - 4);
            in_.erase(0, 1 + size_t{len});
            received_.emplace_back(type, body);
            handle(type, body);
        }
    }

    bool has_output() const { return !out_.empty(); }
    // Removes and returns the next whole backend message.
    std::string pop_message() {
        const uint32_t len = read_be32(out_.data() + 1);
        std::string m = out_.substr(0, 1 + size_t{len});
        out_.erase(0, 1 + size_t{len});
        return m;
    }
    std::string take_output() { return std::exchange(out_, {}); }

    std::set<std::string> statement_names() const {
        std::set<std::string> names;
        for (const auto& [name, def] : statements_)
            if (!name.empty()) names.insert(name);
        return names;
    }
    const std::vector<std::pair<char, std::string>>& received() const { return received_; }
    void clear_received() { received_.clear(); }

  private:
    static std::string query_of(std::string_view def) { return std::string(def.substr(0, def.find('\0'))); }

    void error(std::string_view sqlstate, std::string_view message, bool extended) {
        append_error(out_, "ERROR", sqlstate, message);
        if (extended) skipping_ = true;
    }
    void simple(char type) {
        MessageBuilder m(out_, type);
        m.finish();
    }
    void describe_rows(std::string_view query) {
        if (query.starts_with("select")) {
            append_row_description(out_, {"q"});
        } else {
            simple('n');
        }
    }

    void handle(char type, const std::string& body) {
        if (skipping_ && type != 'S') return;
        FieldReader r(body);
        switch (type) {
            case 'P': {
                const std::string name(*r.cstr());
                const std::string def(r.rest());
                if (name.empty()) statements_.erase("");  // PostgreSQL drops the unnamed one first
                if (!name.empty() && statements_.contains(name)) {
                    return error("42P05", "prepared statement \"" + name + "\" already exists", true);
                }
                const std::string q = query_of(def);
                if (q.find("bad") != std::string::npos) {
                    return error("42601", "syntax error at or near \"bad\"", true);
                }
                if (!broken_.empty() && q.find(broken_) != std::string::npos) {
                    return error("42P01", "relation \"" + broken_ + "\" does not exist", true);
                }
                statements_[name] = def;
                return simple('1');
            }
            case 'B': {
                const std::string portal(*r.cstr());
                const std::string stmt(*r.cstr());
                const auto it = statements_.find(stmt);
                if (it == statements_.end()) {
                    return error("26000",
                                 stmt.empty() ? "unnamed prepared statement does not exist"
                                              : "prepared statement \"" + stmt + "\" does not exist",
                                 true);
                }
                portals_[portal] = query_of(it->second);
                return simple('2');
            }
            case 'D': {
                const char what = *r.byte();
                const std::string name(*r.cstr());
                if (what == 'S') {
                    const auto it = statements_.find(name);
                    if (it == statements_.end()) {
                        return error("26000", "prepared statement \"" + name + "\" does not exist", true);
                    }
                    const std::string q = query_of(it->second);
                    MessageBuilder m(out_, 't');
                    m.bytes(std::string_view(it->second).substr(q.size() + 1));
                    m.finish();
                    return describe_rows(q);
                }
                const auto it = portals_.find(name);
                if (it == portals_.end())
                    return error("34000", "portal \"" + name + "\" does not exist", true);
                return describe_rows(it->second);
            }
            case 'E': {
                const std::string portal(*r.cstr());
                const auto it = portals_.find(portal);
                if (it == portals_.end())
                    return error("34000", "portal \"" + portal + "\" does not exist", true);
                if (it->second.find("oops") != std::string::npos)
                    return error("22012", "division by zero", true);
                if (it->second.find("deferred") != std::string::npos) commit_fails_ = true;
                if (it->second.starts_with("select")) {
                    append_data_row(out_, {it->second});
                    return append_command_complete(out_, "SELECT 1");
                }
                return append_command_complete(out_, "INSERT 0 1");
            }
            case 'C': {
                const char what = *r.byte();
                const std::string name(*r.cstr());
                if (what == 'S') {
                    statements_.erase(name);
                } else {
                    portals_.erase(name);
                }
                return simple('3');
            }
            case 'S':
                skipping_ = false;
                portals_.clear();  // the implicit transaction ends
                if (std::exchange(commit_fails_, false)) {
                    error("23503", "insert or update violates foreign key constraint", false);
                }
                return append_ready_for_query(out_, 'I');
            case 'H':
                return;
            case 'Q': {
                const std::string sql(*r.cstr());
                if (sql == "DISCARD ALL" || sql == "DEALLOCATE ALL") {
                    statements_.clear();
                    if (sql == "DISCARD ALL") portals_.clear();
                    append_command_complete(out_, sql);
                } else {
                    append_data_row(out_, {sql});
                    append_command_complete(out_, "SELECT 1");
                }
                return append_ready_for_query(out_, 'I');
            }
            default:
                FAIL() << "unexpected frontend message " << type;
        }
    }

    std::string broken_;
    std::string in_;
    std::string out_;
    bool skipping_ = false;
    bool commit_fails_ = false;
    std::map<std::string, std::string> statements_;  // name -> Parse body after the name
    std::map<std::string, std::string> portals_;     // name -> query
    std::vector<std::pair<char, std::string>> received_;
};

// ---- the pooled side: a server connection and a client ----

struct Server {
    explicit Server(size_t capacity, std::string broken = {})
        : fake(std::move(broken)), statements(capacity) {}
    FakeServer fake;
    ServerStatements statements;
    ResponseQueue queue;
};

struct Client {
    ClientStatements statements;
    std::string out;  // everything the client received
};

// Drives a client and a server connection the way the relay must.
class Harness {
  public:
    // Sends the messages through the Rewriter; returns the bytes the server received.
    std::string send(Client& c, Server& s, const std::vector<Msg>& msgs) {
        std::string sent;
        for (const auto& m : msgs) {
            std::string to_server;
            const auto st =
                rewriter_.on_client_message(m.type, m.body, c.statements, s.statements, s.queue, to_server);
            EXPECT_TRUE(st.has_value()) << st.error().message;
            s.fake.feed(to_server);
            sent += to_server;
            s.queue.append_ready_fakes(c.out);
        }
        return sent;
    }
    // Delivers every pending server message.
    void deliver(Client& c, Server& s) {
        while (s.fake.has_output())
            deliver_one(c, s);
    }
    void deliver_one(Client& c, Server& s) {
        const std::string m = s.fake.pop_message();
        const std::string_view body = std::string_view(m).substr(5);
        const Disposition d = s.queue.on_server_message(m[0], body, s.statements, &c.statements);
        EXPECT_NE(d, Disposition::kOutOfSync) << "server message " << m[0];
        if (d == Disposition::kForward) c.out += m;
        s.queue.append_ready_fakes(c.out);
    }
    // One round trip: what the client receives for `msgs`.
    std::string run(Client& c, Server& s, const std::vector<Msg>& msgs) {
        const size_t before = c.out.size();
        send(c, s, msgs);
        deliver(c, s);
        EXPECT_TRUE(s.queue.empty());
        return c.out.substr(before);
    }
    const PreparedStats& stats() const { return rewriter_.stats(); }
    Rewriter& rewriter() { return rewriter_; }

  private:
    Rewriter rewriter_;
};

// What a direct connection answers to the same messages.
std::string direct(FakeServer& server, const std::vector<Msg>& msgs) {
    server.feed(all_bytes(msgs));
    return server.take_output();
}

std::vector<std::pair<char, std::string>> sent_messages(std::string_view bytes) {
    return split_messages(bytes);
}

// The statement name a Parse/Bind/Describe/Close sent to the server names.
std::string named(const std::pair<char, std::string>& m) {
    FieldReader r(m.second);
    if (m.first == 'B') r.cstr();
    if (m.first == 'D' || m.first == 'C') r.byte();
    return std::string(*r.cstr());
}

void expect_tables_match(const Server& s) {
    std::set<std::string> tracked;
    for (const auto& n : s.statements.names())
        tracked.insert(n);
    for (const auto& n : s.statements.pending_closes())
        tracked.insert(n);
    EXPECT_EQ(s.fake.statement_names(), tracked);
    EXPECT_LE(s.statements.size(), s.statements.capacity());
}

const std::vector<Msg> kUse = {bind_msg("", "s1"), execute_msg(), sync_msg()};

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
