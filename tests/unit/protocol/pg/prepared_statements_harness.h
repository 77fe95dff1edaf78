// Owns the test harness of the prepared-statement tests: frontend messages, a simulated PostgreSQL server
// that answers them like a real one, and the pooled side (server connections and clients) whose byte streams
// are compared with talking to the server directly. Shared by prepared_statements_test.cpp,
// prepared_statements_property_test.cpp and prepared_statements_lifetime_test.cpp.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/pg/messages.h"
#include "protocol/pg/prepared_statements.h"
#include "protocol/pg/wire.h"

namespace poolguard::protocol::pg::prepared_testing {

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

inline Msg parse_msg(std::string_view name, std::string_view query, const std::vector<uint32_t>& oids = {}) {
    Msg m{'P', {}};
    m.body.append(name).push_back('\0');
    m.body.append(query).push_back('\0');
    append_be16(m.body, static_cast<uint16_t>(oids.size()));
    for (uint32_t oid : oids)
        append_be32(m.body, oid);
    return m;
}

// A Bind with one text parameter "42", so that the bytes after the statement name are not trivial.
inline Msg bind_msg(std::string_view portal, std::string_view stmt) {
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

inline Msg describe_msg(char what, std::string_view name) {
    Msg m{'D', std::string(1, what)};
    m.body.append(name).push_back('\0');
    return m;
}

inline Msg close_msg(char what, std::string_view name) {
    Msg m{'C', std::string(1, what)};
    m.body.append(name).push_back('\0');
    return m;
}

inline Msg execute_msg(std::string_view portal = "") {
    Msg m{'E', {}};
    m.body.append(portal).push_back('\0');
    append_be32(m.body, 0);
    return m;
}

inline Msg sync_msg() {
    return Msg{'S', {}};
}
inline Msg flush_msg() {
    return Msg{'H', {}};
}
inline Msg query_msg(std::string_view sql) {
    return Msg{'Q', std::string(sql) + '\0'};
}

inline std::string all_bytes(const std::vector<Msg>& msgs) {
    std::string out;
    for (const auto& m : msgs)
        out += m.bytes();
    return out;
}

// ---- backend byte streams ----

inline std::vector<std::pair<char, std::string>> split_messages(std::string_view bytes) {
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
inline std::string types(std::string_view bytes) {
    std::string out;
    for (const auto& [t, body] : split_messages(bytes))
        out.push_back(t);
    return out;
}

// The SQLSTATE and message of the first ErrorResponse in a stream.
inline std::string first_error(std::string_view bytes) {
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
inline std::string direct(FakeServer& server, const std::vector<Msg>& msgs) {
    server.feed(all_bytes(msgs));
    return server.take_output();
}

inline std::vector<std::pair<char, std::string>> sent_messages(std::string_view bytes) {
    return split_messages(bytes);
}

// The statement name a Parse/Bind/Describe/Close sent to the server names.
inline std::string named(const std::pair<char, std::string>& m) {
    FieldReader r(m.second);
    if (m.first == 'B') r.cstr();
    if (m.first == 'D' || m.first == 'C') r.byte();
    return std::string(*r.cstr());
}

inline void expect_tables_match(const Server& s) {
    std::set<std::string> tracked;
    for (const auto& n : s.statements.names())
        tracked.insert(n);
    for (const auto& n : s.statements.pending_closes())
        tracked.insert(n);
    EXPECT_EQ(s.fake.statement_names(), tracked);
    EXPECT_LE(s.statements.size(), s.statements.capacity());
}

inline const std::vector<Msg> kUse = {bind_msg("", "s1"), execute_msg(), sync_msg()};

}  // namespace poolguard::protocol::pg::prepared_testing
