// Owns auth_query: looking up a client's password secret in the database itself. The lookup borrows a server
// of the auth_user's pool like any client would, and reads the reply through a socket pair linked to that
// server, so the pool's limits, queueing and clean-up apply to it unchanged.
#include "session/auth_query.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cstring>

#include "pool/linked_client.h"
#include "pool/pool_manager.h"
#include "protocol/pg/frame_scanner.h"
#include "protocol/pg/messages.h"
#include "session/proxy.h"

namespace poolguard::session {
namespace pg = protocol::pg;

AuthQueryTarget auth_query_target(const config::Config& cfg, const config::DatabaseConfig& db,
                                  std::optional<config::DatabaseConfig>& storage) {
    AuthQueryTarget t;
    t.auth_user = !db.auth_user.empty() ? db.auth_user : cfg.auth_user;
    t.query = !db.auth_query.empty() ? db.auth_query : cfg.auth_query;
    const std::string& dbname = !db.auth_dbname.empty() ? db.auth_dbname : cfg.auth_dbname;
    t.database = &db;
    if (!dbname.empty() && dbname != db.name) {
        storage = cfg.resolve_database(dbname);
        if (storage) t.database = &*storage;
    }
    return t;
}

namespace {

void put_u32(std::string& out, uint32_t v) {
    const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                       static_cast<char>(v)};
    out.append(b, 4);
}
void put_u16(std::string& out, uint16_t v) {
    out.push_back(static_cast<char>(v >> 8));
    out.push_back(static_cast<char>(v));
}
void begin_message(std::string& out, char type, size_t& at) {
    out.push_back(type);
    at = out.size();
    put_u32(out, 0);
}
void end_message(std::string& out, size_t at) {
    const auto len = static_cast<uint32_t>(out.size() - at);
    for (int i = 0; i < 4; ++i)
        out[at + i] = static_cast<char>(len >> (24 - 8 * i));
}

// Parse (unnamed) + Bind (one text parameter) + Execute + Sync: the user name never becomes SQL text.
std::string lookup_request(std::string_view sql, std::string_view user) {
    std::string out;
    size_t at = 0;
    begin_message(out, 'P', at);
    out.push_back('\0');  // unnamed statement
    out.append(sql);
    out.push_back('\0');
    put_u16(out, 0);  // parameter types inferred
    end_message(out, at);
    begin_message(out, 'B', at);
    out.push_back('\0');  // unnamed portal
    out.push_back('\0');  // unnamed statement
    put_u16(out, 0);      // all parameters text
    put_u16(out, 1);
    put_u32(out, static_cast<uint32_t>(user.size()));
    out.append(user);
    put_u16(out, 0);  // all results text
    end_message(out, at);
    begin_message(out, 'E', at);
    out.push_back('\0');
    put_u32(out, 0);
    end_message(out, at);
    pg::append_sync(out);
    return out;
}

// DataRow body: column values (nullopt = NULL).
std::optional<std::vector<std::optional<std::string>>> parse_data_row(std::string_view body) {
    auto u16 = [&](size_t at) {
        return static_cast<uint16_t>((static_cast<uint8_t>(body[at]) << 8) |
                                     static_cast<uint8_t>(body[at + 1]));
    };
    auto i32 = [&](size_t at) {
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i)
            v = (v << 8) | static_cast<uint8_t>(body[at + i]);
        return static_cast<int32_t>(v);
    };
    if (body.size() < 2) return std::nullopt;
    const int n = u16(0);
    size_t at = 2;
    std::vector<std::optional<std::string>> out;
    for (int i = 0; i < n; ++i) {
        if (at + 4 > body.size()) return std::nullopt;
        const int32_t len = i32(at);
        at += 4;
        if (len < 0) {
            out.emplace_back(std::nullopt);
            continue;
        }
        if (at + static_cast<size_t>(len) > body.size()) return std::nullopt;
        out.emplace_back(std::string(body.substr(at, static_cast<size_t>(len))));
        at += static_cast<size_t>(len);
    }
    return out;
}

// The lookup's side of the link: the server relays its reply into one end of a socket pair.
class LookupClient final : public pool::LinkedClient, public std::enable_shared_from_this<LookupClient> {
  public:
    explicit LookupClient(net::Socket socket) : socket_(std::move(socket)) {}
    std::shared_ptr<pool::LinkedClient> keep_alive() override { return weak_from_this().lock(); }
    net::Stream& client_socket() override { return socket_; }
    net::WriteGate& client_write_gate() override { return gate_; }
    pg::ClientStatements* client_statements() override { return nullptr; }
    void on_server_parameter(const std::string&, const std::string&) override {}
    void on_server_released() override { released = true; }
    // A lost server ends the reader's wait: its end of the pair sees EOF.
    void on_server_lost(const pg::ErrorFields& error) override {
        lost = error;
        std::error_code ignored;
        socket_.close(ignored);
    }
    void on_protocol_refusal(const pg::ErrorFields& error) override { on_server_lost(error); }
    void on_bytes_to_client(size_t) override {}

    bool released = false;
    std::optional<pg::ErrorFields> lost;

  private:
    net::Stream socket_;
    net::WriteGate gate_;
};

Result<std::pair<net::Socket, net::Socket>> socket_pair(const asio::any_io_executor& ex) {
    int fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0)
        return fail(std::string("auth_query: socketpair failed: ") + std::strerror(errno),
                    sqlstate::kConnectionFailure);
    net::Socket a(ex), b(ex);
    std::error_code ec1, ec2;
    a.assign(asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM), fds[0], ec1);
    b.assign(asio::generic::stream_protocol(AF_UNIX, SOCK_STREAM), fds[1], ec2);
    if (ec1 || ec2) {
        if (ec1) ::close(fds[0]);
        if (ec2) ::close(fds[1]);
        return fail("auth_query: cannot set up the reply channel", sqlstate::kConnectionFailure);
    }
    return std::pair{std::move(a), std::move(b)};
}

}  // namespace

asio::awaitable<Result<std::optional<std::string>>> lookup_secret(Proxy& proxy,
                                                                  const config::DatabaseConfig& database,
                                                                  const std::string& auth_user,
                                                                  const std::string& user,
                                                                  const std::string& query) {
    // Held across the awaits: a reload while the lookup waits for a server would free a reference's target.
    const std::shared_ptr<const config::Config> cfg_snapshot = proxy.config_snapshot();
    const config::Config& cfg = *cfg_snapshot;
    const std::string auth_secret = !database.password.empty() && database.user == auth_user
                                        ? database.password
                                        : proxy.secret_for(auth_user).value_or("");
    pool::Pool& pool = proxy.pools().get_or_create(database, auth_user, auth_secret);
    proxy.on_pool_created(pool);
    auto ex = co_await asio::this_coro::executor;
    auto pair = socket_pair(ex);
    if (!pair) co_return std::unexpected(pair.error());
    net::Socket reader = std::move(pair->second);
    // Shared, so that the server's relay can keep it alive while it waits on its socket (keep_alive).
    const auto client_ptr = std::make_shared<LookupClient>(std::move(pair->first));
    LookupClient& client = *client_ptr;

    auto server = co_await pool.acquire();
    if (!server) co_return std::unexpected(server.error());
    pool::ServerPtr s = *server;
    s->link(&client);
    const std::string request = lookup_request(query.empty() ? cfg.auth_query : query, user);
    for (char t : {'P', 'B', 'E', 'S'})
        s->note_client_message(t);
    auto [wec, wn] = co_await asio::async_write(s->socket(), asio::buffer(request), net::use_nothrow);
    if (wec) {
        s->unlink();
        pool.release(s, true);
        co_return fail("auth_query: could not send the lookup to the server", sqlstate::kConnectionFailure);
    }

    // Read the reply up to ReadyForQuery; a lost server closes the pair's far end, ending the read.
    std::optional<std::string> secret;
    std::optional<pg::ErrorFields> error;
    bool found_row = false;
    std::string buf;
    pg::FrameScanner scanner(64u << 20, 1u << 20);  // a secret row is small; anything huge is an error
    for (char t : {'D', 'E', 'Z'})
        scanner.set_whole(t);
    asio::steady_timer deadline(ex);
    deadline.expires_after(std::chrono::seconds(30));
    deadline.async_wait([&reader](std::error_code ec) {
        if (!ec) {
            std::error_code ignored;
            reader.close(ignored);
        }
    });
    bool done = false;
    while (!done) {
        char chunk[4096];
        auto [ec, n] = co_await reader.async_read_some(asio::buffer(chunk), net::use_nothrow);
        if (ec) break;
        buf.append(chunk, n);
        size_t used = 0;
        while (!done) {
            auto seg = scanner.next(std::string_view(buf).substr(used));
            if (seg.kind == pg::SegmentKind::kNeedMore) break;
            if (seg.kind == pg::SegmentKind::kError) {
                done = true;
                break;
            }
            used += seg.bytes.size();
            if (seg.kind != pg::SegmentKind::kWhole) continue;
            if (seg.type == 'D' && !found_row) {
                found_row = true;
                auto row = parse_data_row(seg.body());
                if (row && row->size() >= 2 && (*row)[1]) secret = *(*row)[1];
            } else if (seg.type == 'E') {
                error = pg::parse_error_fields(seg.body());
            } else if (seg.type == 'Z') {
                done = true;
            }
        }
        buf.erase(0, used);
    }
    deadline.cancel();
    // The relay hands the server back at ReadyForQuery right after writing it; give it the turn to do so.
    for (int i = 0; i < 100 && !client.released && !client.lost && s->linked_client() == &client; ++i)
        co_await asio::post(ex, net::use_nothrow);
    if (s->linked_client() == &client) {
        s->unlink();
        pool.release(s, !done);
    }
    if (client.lost) error = client.lost;
    if (!done && !error)
        error = pg::ErrorFields{
            "ERROR", sqlstate::kConnectionFailure, "auth_query: no reply from the server", {}, {}};
    if (error) {
        spdlog::warn("auth_query for user \"{}\" as \"{}\" in {} failed: {} {}", user, auth_user,
                     database.name, error->sqlstate, error->message);
        co_return fail("auth_query failed: " + error->message,
                       error->sqlstate.empty() ? std::string(sqlstate::kConnectionFailure) : error->sqlstate);
    }
    co_return secret;
}

}  // namespace poolguard::session
