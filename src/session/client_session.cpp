// Owns ClientSession: one client connection from its startup packet to its close — login and
// authentication, binding to a pooled server for each transaction, and relaying its messages.
#include "session/client_session.h"

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "admin/admin_console.h"
#include "common/dataplane_counters.h"
#include "net/drained_wait.h"
#include "net/fast_write.h"
#include "protocol/pg/md5_auth.h"
#include "protocol/pg/scram.h"
#include "protocol/pg/userlist.h"
#include "protocol/pg/wire.h"
#include "session/auth_query.h"
#include "session/proxy.h"

namespace poolguard::session {

namespace pg = protocol::pg;

namespace {
// Parse/Bind/Describe/Close must arrive whole when prepared statements are tracked (large Binds included).
constexpr uint32_t kMaxWholeClientMessage = 256u << 20;
constexpr size_t kMaxAuthMessage = 64 * 1024;

// Session parameters poolguard keeps per client and re-applies on whichever server it gets.
constexpr const auto& kTracked = kTrackedParams;

const TrackedParam* tracked(std::string_view lower) {
    const int i = tracked_index(lower);
    return i < 0 ? nullptr : &kTracked[i];
}

// One shared object per distinct set of tracked parameter values (the key encodes them all), so equal
// sets compare by pointer. Per thread: sessions and their servers live on one io thread.
std::shared_ptr<const std::string> intern_parameter_set(const TrackedParams& vars) {
    std::string key;
    for (size_t i = 0; i < kTrackedCount; ++i) {
        const std::string* value = vars.at(i);
        if (!value) {
            key += '0';
        } else {
            key += '1';
            key += *value;
            key += '\0';
        }
    }
    thread_local std::map<std::string, std::weak_ptr<const std::string>, std::less<>> table;
    auto& slot = table[key];
    if (auto existing = slot.lock()) return existing;
    std::erase_if(table, [](const auto& entry) { return entry.second.expired(); });
    auto fresh = std::make_shared<const std::string>(key);
    table[key] = fresh;
    return fresh;
}

std::string lowercase(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

bool valid_frontend_type(char t) {
    switch (t) {
        case 'Q':
        case 'P':
        case 'B':
        case 'E':
        case 'D':
        case 'C':
        case 'H':
        case 'S':
        case 'F':
        case 'X':
        case 'd':
        case 'c':
        case 'f':
            return true;
        default:
            return false;
    }
}

pg::ErrorFields fatal(std::string_view state, std::string message) {
    return pg::ErrorFields{"FATAL", std::string(state), std::move(message), {}, {}};
}
}  // namespace

ClientSession::ClientSession(Proxy& proxy, net::Socket socket, uint64_t id)
    : proxy_(proxy),
      socket_(std::move(socket)),
      id_(id),
      in_(8 * 1024),
      scanner_(static_cast<uint32_t>(std::max(proxy.config().max_packet_size, 5)), kMaxWholeClientMessage),
      connected_at_(std::chrono::steady_clock::now()) {
    peer_ = net::peer_address(socket_, &peer_port_);
}

ClientSession::~ClientSession() = default;

void ClientSession::close_socket() {
    closing_ = true;
    std::error_code ignored;
    if (socket_.is_open()) {
        socket_.shutdown(asio::socket_base::shutdown_both, ignored);
        socket_.close(ignored);
    }
}

// g++ 12 mis-destroys temporaries that live in a co_await full-expression (double free seen with an
// ErrorFields built inline), so errors are queued by a plain call and flushed by an argument-less await.
void ClientSession::queue_error(const pg::ErrorFields& error) {
    pg::append_error(client_out_, error);
}

asio::awaitable<void> ClientSession::flush_client_out() {
    if (client_out_.empty()) co_return;
    co_await asio::async_write(socket_, asio::buffer(client_out_), net::use_nothrow);
    client_out_.clear();  // on a write error the client is gone; nothing more to tell it
}

asio::awaitable<void> ClientSession::run() {
    auto self = shared_from_this();
    proxy_.register_client(this, cancel_pid_, cancel_key_);
    auto st = co_await read_startup();
    if (st) {
        logged_in_ = true;
        if (proxy_.config().log_connections)
            spdlog::info("C-{}: {}/{}@{}:{} login attempt: db={} user={} application_name={}", id_, database_,
                         user_, peer_, peer_port_, database_, user_, application_name());
        if (admin_)
            co_await admin_loop();
        else
            co_await relay();
        if (park_if_requested()) co_return;
    } else if (!st.error().message.empty()) {
        close_reason_ = st.error().message;
    }
    finish();
}

// An idle client costs its session object and a pending readiness callback, not the frames of run() and
// relay() and their pending wait (about 2 KB): with thousands of idle clients, that is most of poolguard's
// memory. The callback holds the session alive.
bool ClientSession::park_if_requested() {
    if (!parked_exit_) return false;
    parked_exit_ = false;
    if (closing_ || !socket_.is_open() || server_) return false;
    parked_ = true;
    dataplane_counters().clients_parked++;
    socket_.async_wait(asio::socket_base::wait_read,
                       [self = shared_from_this()](std::error_code ec) { self->on_unparked(ec); });
    return true;
}

void ClientSession::on_unparked(std::error_code ec) {
    parked_ = false;
    dataplane_counters().clients_parked--;
    idle_checks_ = 0;
    if (ec || closing_ || !socket_.is_open()) {
        // Closed while parked (client_idle_timeout, KILL, shutdown): only the teardown is left.
        if (ec && ec != asio::error::operation_aborted && close_reason_.empty())
            close_reason_ = "client read failed: " + ec.message();
        finish();
        return;
    }
    asio::co_spawn(socket_.get_executor(), resume_relay(), net::LogIfThrown{"client session"});
}

asio::awaitable<void> ClientSession::resume_relay() {
    auto self = shared_from_this();
    co_await relay();
    if (park_if_requested()) co_return;
    finish();
}

void ClientSession::finish() {
    if (server_) {
        auto s = server_;
        server_ = nullptr;
        if (pool_) pool_->release(s, true);
    }
    close_socket();
    proxy_.unregister_client(this);
    if (logged_in_ && proxy_.config().log_disconnections) {
        const auto secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - connected_at_).count();
        spdlog::info("C-{}: {}/{}@{}:{} closing because: {} (age={:.0f}s)", id_, database_, user_, peer_,
                     peer_port_, close_reason_.empty() ? "client closed the connection" : close_reason_,
                     secs);
    }
}

asio::awaitable<Status> ClientSession::read_startup() {
    // Login must finish within client_login_timeout, or a silent client would hold a slot forever.
    asio::steady_timer login_timer(socket_.get_executor());
    const auto login_timeout = proxy_.config().client_login_timeout;
    // Shared so a handler that fires just as the login finishes never touches a dead frame.
    auto timed_out_flag = std::make_shared<bool>(false);
    auto login_done = std::make_shared<bool>(false);
    struct MarkDone {
        std::shared_ptr<bool> done;
        ~MarkDone() { *done = true; }
    } mark_done{login_done};
    const bool& timed_out = *timed_out_flag;
    if (login_timeout.count() > 0) {
        login_timer.expires_after(login_timeout);
        login_timer.async_wait([self = shared_from_this(), timed_out_flag, login_done](std::error_code ec) {
            if (!ec && !*login_done) {
                *timed_out_flag = true;
                auto* this_ = self.get();
                auto& socket_ = this_->socket_;
                std::string out;
                pg::append_error(out, fatal(sqlstate::kProtocolViolation, "client_login_timeout"));
                net::send_now(socket_, out);
                this_->close_socket();
            }
        });
    }
    struct CancelTimer {
        asio::steady_timer& t;
        ~CancelTimer() { t.cancel(); }
    } cancel_guard{login_timer};

    while (true) {
        // A startup-phase packet: int32 length (including itself), then the rest.
        char len_buf[4];
        auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(len_buf), net::use_nothrow);
        if (ec) co_return fail(timed_out ? "client_login_timeout" : "");
        const uint32_t len = pg::read_be32(len_buf);
        if (len < 8 || len > pg::kMaxStartupPacket) {
            {
                queue_error(fatal(sqlstate::kProtocolViolation, "invalid startup packet length"));
                co_await flush_client_out();
            }
            co_return fail("invalid startup packet length");
        }
        std::string packet(len, '\0');
        std::memcpy(packet.data(), len_buf, 4);
        auto [ec2, n2] =
            co_await asio::async_read(socket_, asio::buffer(packet.data() + 4, len - 4), net::use_nothrow);
        if (ec2) co_return fail("");
        auto sp = pg::parse_startup_packet(packet);
        if (!sp) {
            {
                queue_error(fatal(sp.error().sqlstate, sp.error().message));
                co_await flush_client_out();
            }
            co_return fail(sp.error().message);
        }
        switch (sp->kind) {
            case pg::StartupKind::kSslRequest:
            case pg::StartupKind::kGssEncRequest: {
                // No TLS/GSS encryption yet: 'N' tells the client to continue in plain text.
                char no = 'N';
                auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(&no, 1), net::use_nothrow);
                if (wec) co_return fail("");
                continue;
            }
            case pg::StartupKind::kCancel:
                logged_in_ = false;
                proxy_.forward_cancel(sp->cancel_pid, sp->cancel_key);
                co_return fail("");
            case pg::StartupKind::kStartup:
                break;
        }

        const auto& cfg = proxy_.config();
        if (static_cast<int>(proxy_.client_count()) > cfg.max_client_conn) {
            {
                queue_error(
                    fatal(sqlstate::kTooManyConnections, "no more connections allowed (max_client_conn)"));
                co_await flush_client_out();
            }
            if (cfg.log_pooler_errors)
                spdlog::warn("C-{}: {}:{} refused: no more connections allowed (max_client_conn={})", id_,
                             peer_, peer_port_, cfg.max_client_conn);
            dataplane_counters().refused_max_client_conn++;  // control plane (issue 5)
            co_return fail("no more connections allowed (max_client_conn)");
        }

        for (const auto& [key, value] : sp->params) {
            const auto lower = lowercase(key);
            if (lower == "user") {
                user_ = value;
            } else if (lower == "database") {
                database_ = value;
            } else if (tracked(lower)) {
                vars_.set(lower, value);
            } else if (std::find(cfg.ignore_startup_parameters.begin(), cfg.ignore_startup_parameters.end(),
                                 lower) != cfg.ignore_startup_parameters.end()) {
                continue;
            } else {
                auto msg = "unsupported startup parameter: " + key;
                {
                    queue_error(fatal(sqlstate::kProtocolViolation, msg));
                    co_await flush_client_out();
                }
                co_return fail(msg);
            }
        }
        if (user_.empty()) {
            {
                queue_error(fatal(sqlstate::kProtocolViolation, "no user name in startup packet"));
                co_await flush_client_out();
            }
            co_return fail("no user name in startup packet");
        }
        if (database_.empty()) database_ = user_;
        break;
    }

    const auto& cfg = proxy_.config();
    if (database_ == "pgbouncer" || database_ == "poolguard") co_return co_await admin_login();
    if (proxy_.database_disabled(database_)) {
        auto msg = "database does not allow connections: " + database_;
        {
            queue_error(fatal("57P03", msg));
            co_await flush_client_out();
        }
        co_return fail(msg);
    }
    const auto resolved = cfg.resolve_database(database_);
    const config::DatabaseConfig* db = resolved ? &*resolved : nullptr;
    if (!db) {
        auto msg = "no such database: " + database_;
        {
            queue_error(fatal(sqlstate::kInvalidCatalogName, msg));
            co_await flush_client_out();
        }
        if (cfg.log_pooler_errors) spdlog::warn("C-{}: {}:{} {}", id_, peer_, peer_port_, msg);
        co_return fail(msg);
    }

    auto secret = proxy_.secret_for(user_);
    if (!secret && cfg.auth_type != config::AuthType::kTrust && cfg.auth_type != config::AuthType::kAny) {
        // Not in the auth_file: ask the database itself (auth_user + auth_query), as PgBouncer does.
        std::optional<config::DatabaseConfig> auth_db_storage;
        const AuthQueryTarget lookup = auth_query_target(cfg, *db, auth_db_storage);
        if (!lookup.auth_user.empty()) {
            auto looked = co_await lookup_secret(proxy_, *lookup.database, lookup.auth_user, user_);
            if (!looked) {
                {
                    queue_error(fatal(looked.error().sqlstate, looked.error().message));
                    co_await flush_client_out();
                }
                co_return fail(looked.error().message);
            }
            secret = *looked;
        }
    }
    const std::string client_secret = secret.value_or("");
    auto st = co_await authenticate(client_secret);
    if (!st) {
        {
            queue_error(fatal(st.error().sqlstate, st.error().message));
            co_await flush_client_out();
        }
        if (cfg.log_pooler_errors)
            spdlog::warn("C-{}: {}/{}@{}:{} login failed: {}", id_, database_, user_, peer_, peer_port_,
                         st.error().message);
        dataplane_counters().client_login_failures++;  // control plane (issue 5)
        co_return fail(st.error().message);
    }
    if (db->user.empty()) {
        // With a SCRAM verifier as secret, the keys from this client's own exchange log poolguard in.
        std::optional<pool::ScramPassThrough> keys;
        if (scram_client_key_) {
            if (auto parsed = pg::parse_scram_secret(client_secret))
                keys = pool::ScramPassThrough{*scram_client_key_, parsed->server_key};
        }
        pool_ = &proxy_.pools().get_or_create(*db, user_, client_secret, keys);
    } else {
        // A forced user: every client of this database shares the pool of that server user.
        auto forced_secret = !db->password.empty() ? db->password : proxy_.secret_for(db->user).value_or("");
        pool_ = &proxy_.pools().get_or_create(*db, db->user, forced_secret);
    }
    proxy_.on_pool_created(*pool_);
    // Priority class (issue 6): by the login's application_name and user, fixed for the session.
    pool_class_ = config::match_class(pool_->settings().classes, application_name(), user_);
    // Named prepared statements across servers: only where servers change between transactions.
    track_statements_ = pool_->mode() != config::PoolMode::kSession && cfg.max_prepared_statements > 0;
    if (track_statements_)
        for (char t : {'P', 'B', 'D', 'C'})
            scanner_.set_whole(t);
    co_return co_await finish_login();
}

asio::awaitable<Status> ClientSession::admin_login() {
    const auto& cfg = proxy_.config();
    auto listed = [&](const std::vector<std::string>& users) {
        return std::find(users.begin(), users.end(), user_) != users.end();
    };
    const std::string admin_secret = proxy_.secret_for(user_).value_or("");
    auto st = co_await authenticate(admin_secret);
    if (!st) {
        {
            queue_error(fatal(st.error().sqlstate, st.error().message));
            co_await flush_client_out();
        }
        co_return fail(st.error().message);
    }
    if (!listed(cfg.admin_users) && !listed(cfg.stats_users)) {
        auto msg = "not allowed: user \"" + user_ + "\" is in neither admin_users nor stats_users";
        {
            queue_error(fatal(sqlstate::kInvalidAuthorization, msg));
            co_await flush_client_out();
        }
        if (cfg.log_pooler_errors)
            spdlog::warn("C-{}: {}@{}:{} admin login refused: {}", id_, user_, peer_, peer_port_, msg);
        co_return fail(msg);
    }
    admin_ = true;
    admin_can_modify_ = listed(cfg.admin_users);
    std::string out;
    pg::append_auth_request(out, pg::AuthRequest::kOk);
    const std::pair<const char*, std::string> params[] = {
        {"server_version", std::string("15.0 (poolguard ") + POOLGUARD_VERSION + ")"},
        {"server_encoding", "UTF8"},
        {"client_encoding", "UTF8"},
        {"DateStyle", "ISO"},
        {"TimeZone", "UTC"},
        {"integer_datetimes", "on"},
        {"standard_conforming_strings", "on"},
        {"application_name", application_name()},
    };
    for (const auto& [k, v] : params)
        pg::append_parameter_status(out, k, v);
    pg::append_backend_key(out, cancel_pid_, cancel_key_);
    pg::append_ready_for_query(out, 'I');
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
    if (ec) co_return fail("");
    co_return Status{};
}

asio::awaitable<void> ClientSession::admin_loop() {
    admin::AdminConsole console(proxy_.admin_backend(), admin_can_modify_);
    bool skipping_to_sync = false;
    while (!closing_) {
        auto msg = co_await read_auth_message();
        if (!msg) {
            if (!msg.error().sqlstate.empty()) {
                queue_error(fatal(msg.error().sqlstate, msg.error().message));
                co_await flush_client_out();
            }
            co_return;
        }
        std::string out;
        switch (msg->first) {
            case 'Q': {
                auto sql = pg::parse_query(msg->second);
                console.execute(sql ? *sql : std::string_view{}, out);
                pg::append_ready_for_query(out, 'I');
                break;
            }
            case 'X':
                close_reason_ = "client sent Terminate";
                co_return;
            case 'S':
                skipping_to_sync = false;
                pg::append_ready_for_query(out, 'I');
                break;
            case 'H':
                break;
            default:
                if (!skipping_to_sync)
                    pg::append_error(
                        out, pg::ErrorFields{"ERROR",
                                             sqlstate::kFeatureNotSupported,
                                             "the admin console supports only the simple query protocol",
                                             {},
                                             {}});
                skipping_to_sync = true;
                break;
        }
        if (out.empty()) continue;
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
        if (ec) co_return;
    }
}

void ClientSession::kill(const std::string& reason) {
    if (server_) {
        auto s = server_;
        server_ = nullptr;
        s->unlink();
        if (pool_) pool_->release(s, true);
    }
    terminate_with(fatal(sqlstate::kAdminShutdown, reason));
}

asio::awaitable<Result<std::pair<char, std::string>>> ClientSession::read_auth_message() {
    char header[5];
    auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(header), net::use_nothrow);
    if (ec) co_return fail("client disconnected during authentication");
    const uint32_t len = pg::read_be32(header + 1);
    if (len < 4 || len > kMaxAuthMessage)
        co_return fail("invalid message length during authentication", sqlstate::kProtocolViolation);
    std::string body(len - 4, '\0');
    auto [ec2, n2] = co_await asio::async_read(socket_, asio::buffer(body), net::use_nothrow);
    if (ec2) co_return fail("client disconnected during authentication");
    co_return std::pair{header[0], std::move(body)};
}

asio::awaitable<Status> ClientSession::authenticate(const std::string& secret) {
    const auto& cfg = proxy_.config();
    const auto failed = [this]() {
        return fail("password authentication failed for user \"" + user_ + "\"", sqlstate::kInvalidPassword);
    };
    auto type = cfg.auth_type;
    if (type == config::AuthType::kTrust || type == config::AuthType::kAny) co_return Status{};
    if (type != config::AuthType::kPlain && type != config::AuthType::kMd5 &&
        type != config::AuthType::kScramSha256)
        co_return fail(
            std::string("auth_type ") + config::to_string(type) + " is not supported by poolguard yet",
            sqlstate::kFeatureNotSupported);

    const auto kind = pg::classify_secret(secret);
    // As PgBouncer does: a SCRAM verifier in the auth_file means SCRAM even under auth_type=md5.
    bool use_scram = type == config::AuthType::kScramSha256 ||
                     (type == config::AuthType::kMd5 && kind == pg::SecretKind::kScramSha256);
    std::string out;
    if (type == config::AuthType::kPlain) {
        pg::append_auth_request(out, pg::AuthRequest::kCleartextPassword);
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
        if (ec) co_return fail("client disconnected during authentication");
        auto msg = co_await read_auth_message();
        if (!msg) co_return std::unexpected(msg.error());
        if (msg->first != 'p') co_return fail("expected a password message", sqlstate::kProtocolViolation);
        auto pw = pg::parse_password(msg->second);
        if (!pw || secret.empty()) co_return failed();
        bool ok = false;
        switch (kind) {
            case pg::SecretKind::kPlain:
                ok = *pw == secret;
                break;
            case pg::SecretKind::kMd5:
                ok = pg::md5_password_secret(user_, *pw) == secret;
                break;
            case pg::SecretKind::kScramSha256: {
                auto parsed = pg::parse_scram_secret(secret);
                if (parsed) {
                    auto computed = pg::make_scram_secret(*pw, parsed->salt, parsed->iterations);
                    ok = computed.stored_key == parsed->stored_key &&
                         computed.server_key == parsed->server_key;
                }
                break;
            }
        }
        if (!ok) co_return failed();
        co_return Status{};
    }
    if (!use_scram) {
        // MD5 challenge. An unknown user still gets a challenge, so user names cannot be probed.
        std::array<uint8_t, 4> salt;
        const uint64_t r = std::random_device{}() ^ (uint64_t{cancel_key_} << 7);
        std::memcpy(salt.data(), &r, 4);
        pg::append_auth_request(out, pg::AuthRequest::kMd5Password,
                                std::string_view(reinterpret_cast<const char*>(salt.data()), 4));
        auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
        if (ec) co_return fail("client disconnected during authentication");
        auto msg = co_await read_auth_message();
        if (!msg) co_return std::unexpected(msg.error());
        if (msg->first != 'p') co_return fail("expected a password message", sqlstate::kProtocolViolation);
        auto answer = pg::parse_password(msg->second);
        if (!answer || secret.empty() || kind == pg::SecretKind::kScramSha256 ||
            !pg::md5_verify(*answer, secret, user_, salt))
            co_return failed();
        co_return Status{};
    }

    // SCRAM-SHA-256.
    std::optional<pg::ScramSecret> verifier;
    if (kind == pg::SecretKind::kScramSha256) {
        auto parsed = pg::parse_scram_secret(secret);
        if (parsed) verifier = *parsed;
    } else if (kind == pg::SecretKind::kPlain && !secret.empty()) {
        verifier = proxy_.scram_secret_for_plain(user_, secret);
    }
    // Unknown user or an md5 secret (useless for SCRAM): run the exchange with a dummy verifier and fail.
    const bool known = verifier.has_value();
    if (!known) verifier = pg::scram_secret_for_plain_password("poolguard-no-such-user");
    pg::ScramServer server(*verifier);
    pg::append_sasl_mechanisms(out, {"SCRAM-SHA-256"});
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
    if (ec) co_return fail("client disconnected during authentication");
    auto first = co_await read_auth_message();
    if (!first) co_return std::unexpected(first.error());
    if (first->first != 'p') co_return fail("expected SASL response", sqlstate::kProtocolViolation);
    auto initial = pg::parse_sasl_initial(first->second);
    if (!initial) co_return fail("malformed SASLInitialResponse message", sqlstate::kProtocolViolation);
    if (initial->first != "SCRAM-SHA-256")
        co_return fail("client selected an invalid SASL authentication mechanism",
                       sqlstate::kProtocolViolation);
    auto server_first = server.handle_client_first(initial->second);
    if (!server_first) co_return std::unexpected(server_first.error());
    out.clear();
    pg::append_auth_request(out, pg::AuthRequest::kSaslContinue, *server_first);
    auto [ec2, n2] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
    if (ec2) co_return fail("client disconnected during authentication");
    auto final_msg = co_await read_auth_message();
    if (!final_msg) co_return std::unexpected(final_msg.error());
    if (final_msg->first != 'p') co_return fail("expected SASL response", sqlstate::kProtocolViolation);
    auto server_final = server.handle_client_final(final_msg->second);
    if (!server_final || !known) co_return failed();
    if (kind == pg::SecretKind::kScramSha256) scram_client_key_ = server.client_key();
    out.clear();
    pg::append_auth_request(out, pg::AuthRequest::kSaslFinal, *server_final);
    auto [ec3, n3] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
    if (ec3) co_return fail("client disconnected during authentication");
    co_return Status{};
}

asio::awaitable<Status> ClientSession::finish_login() {
    // The client is told the server's parameters; the pool learns them from its first server login.
    if (pool_->server_parameters().empty()) {
        auto server = co_await pool_->acquire(pool_class_, this);
        if (!server) {
            {
                queue_error(fatal(
                    server.error().sqlstate.empty() ? sqlstate::kConnectionFailure : server.error().sqlstate,
                    server.error().message));
                co_await flush_client_out();
            }
            co_return fail(server.error().message);
        }
        pool_->release(*server, false);
    }
    std::string out;
    pg::append_auth_request(out, pg::AuthRequest::kOk);
    for (const auto& [name, value] : pool_->server_parameters()) {
        const auto lower = lowercase(name);
        if (tracked(lower)) {
            if (const std::string* have = vars_.find(lower)) {
                pg::append_parameter_status(out, name, *have);
                continue;
            }
            vars_.set(lower, value);  // the client takes the server default
        }
        pg::append_parameter_status(out, name, value);
    }
    pg::append_backend_key(out, cancel_pid_, cancel_key_);
    pg::append_ready_for_query(out, 'I');
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
    if (ec) co_return fail("");
    idle_since_ = std::chrono::steady_clock::now();
    co_return Status{};
}

void ClientSession::queue_parameter_sync(pool::ServerConnection& server) {
    if (!param_set_) param_set_ = intern_parameter_set(vars_);
    if (server.synced_params() == param_set_) return;  // this server already has exactly these values
    std::string sql;
    const auto& have = server.parameters();
    for (size_t i = 0; i < kTrackedCount; ++i) {
        const auto& t = kTracked[i];
        const std::string* want = vars_.at(i);
        if (!want) continue;
        // No std::string built per lookup: this runs per transaction.
        auto it = have.find(std::string_view(t.lower));
        if (it != have.end() && it->second == *want) continue;
        sql += "SET ";
        sql += t.canonical;
        sql += " = ";
        sql += pg::quote_literal(*want);
        sql += ";";
    }
    if (!sql.empty()) {
        // Marked synced only once the server reports the new values and a later comparison finds them
        // equal: a failed SET must never let the next client skip its own.
        server.queue_internal_query(sql);
        return;
    }
    server.set_synced_params(param_set_);
}

asio::awaitable<Status> ClientSession::bind_server() {
    waiting_ = true;
    wait_notified_ = false;
    wait_started_ = std::chrono::steady_clock::now();
    auto server = co_await pool_->acquire(pool_class_, this);
    waiting_ = false;
    const auto waited_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now() - wait_started_)
                               .count();
    pool_->stats().wait_time_us += waited_us;
    dataplane_counters().observe_wait(static_cast<uint64_t>(waited_us));  // control plane (issue 5)
    if (!server && server.error().message == pool::kWaiterHungUp) {
        close_reason_ = pool::kWaiterHungUp;  // nobody to tell, and not a refusal
        co_return fail(pool::kWaiterHungUp);
    }
    if (!server) {
        const auto& e = server.error();
        // control plane (issue 5): refusals by reason
        if (e.message == "query_wait_timeout")
            dataplane_counters().refused_query_wait_timeout++;
        else
            dataplane_counters().refused_server_error++;
        if (proxy_.config().log_pooler_errors)
            spdlog::warn("C-{}: {}/{}@{}:{} pooler error: {}", id_, database_, user_, peer_, peer_port_,
                         e.message);
        {
            queue_error(fatal(e.sqlstate.empty() ? sqlstate::kConnectionFailure : e.sqlstate, e.message));
            co_await flush_client_out();
        }
        co_return fail(e.message);
    }
    if (closing_ || !socket_.is_open()) {
        pool_->release(*server, true);
        co_return fail("client closed the connection while waiting");
    }
    attach_server(std::move(*server));
    co_return Status{};
}

void ClientSession::attach_server(pool::ServerPtr server) {
    server_ = std::move(server);
    server_->link(this);
    if (track_statements_)
        server_->enable_statement_tracking(static_cast<size_t>(proxy_.config().max_prepared_statements));
    else
        server_->disable_statement_tracking();
    server_->set_linked_client_id(id_);
    request_time_ = std::chrono::system_clock::now();
    bound_at_ = std::chrono::steady_clock::now();  // control plane (issue 5): transaction start
    queue_parameter_sync(*server_);
}

asio::awaitable<void> ClientSession::relay() {
    // The last read emptied the socket and nothing was awaited since (see net::async_wait_drained).
    bool drained = false;
    while (true) {
        // Every pass forwards all complete bytes, so each pass starts with a read. It waits for readability
        // first and only then takes buffer space: a client with nothing unread holds no reference into its
        // buffer while it waits, so the janitor can give an idle client's buffer back (check_timeouts).
        // After a pass that emptied the socket and never suspended, the wait costs no system call
        // (async_wait_drained); otherwise asio's async_wait re-arms the descriptor (one epoll_ctl).
        {
            bool got = false;
            while (!got) {
                awaiting_input_ = in_.empty();
                std::error_code wec;
                if (drained && net::can_wait_drained(socket_)) {
                    auto [e] = co_await net::async_wait_drained(socket_, net::use_nothrow);
                    wec = e;
                } else {
                    auto [e] = co_await socket_.async_wait(asio::socket_base::wait_read, net::use_nothrow);
                    wec = e;
                }
                drained = false;
                awaiting_input_ = false;
                const bool park = park_requested_;
                park_requested_ = false;
                if (wec) {
                    if (park && wec == asio::error::operation_aborted && !closing_ && socket_.is_open()) {
                        parked_exit_ = true;  // run() or resume_relay() parks the session
                        co_return;
                    }
                    if (wec != asio::error::operation_aborted && close_reason_.empty())
                        close_reason_ = "client read failed: " + wec.message();
                    co_return;
                }
                if (!socket_.is_open()) co_return;
                char* p = in_.write_ptr(4096);
                const size_t space = in_.write_space();
                const ssize_t n = ::recv(socket_.native_handle(), p, space, MSG_DONTWAIT);
                const int err = n < 0 ? errno : 0;
                if (n > 0) {
                    in_.commit(static_cast<size_t>(n));
                    ++reads_;
                    got = true;
                    drained = static_cast<size_t>(n) < space;
                } else if (n == 0) {
                    co_return;  // the client closed the connection
                } else if (err != EAGAIN && err != EWOULDBLOCK && err != EINTR) {
                    if (close_reason_.empty())
                        close_reason_ = std::string("client read failed: ") + std::strerror(err);
                    co_return;
                }
            }
        }
        std::string_view v = in_.view();
        if (scanner_.at_boundary() && v.size() >= 1 && v[0] == 'X') {
            close_reason_ = "client sent Terminate";
            co_return;
        }
        if (!server_) {
            if (auto idle = pool_->try_acquire_idle(pool_class_)) {
                // No wait, no coroutine: `drained` still holds, the next wait needs no system call.
                dataplane_counters().observe_wait(0);
                attach_server(std::move(idle));
            } else {
                drained = false;  // waiting for a server lets the reactor run
                auto st = co_await bind_server();
                if (!st) {
                    close_reason_ = st.error().message;
                    co_return;
                }
            }
        }
        auto server = server_;
        const bool tracking = server->tracking_statements();
        std::string rewrite_error;
        to_server_.clear();
        size_t forward = 0;
        size_t want_unread = 0;
        bool terminate = false;
        while (forward < v.size()) {
            auto seg = scanner_.next(v.substr(forward));
            if (seg.kind == pg::SegmentKind::kNeedMore) {
                // Grow only after the bytes before it are written: growing moves the buffer under `v`.
                want_unread = scanner_.needed(v.substr(forward));
                break;
            }
            if (seg.kind == pg::SegmentKind::kError ||
                (seg.kind != pg::SegmentKind::kRest && !valid_frontend_type(seg.type))) {
                std::string why = seg.kind == pg::SegmentKind::kError
                                      ? std::string(scanner_.error())
                                      : std::string("invalid frontend message type ") +
                                            std::to_string(static_cast<unsigned char>(seg.type));
                if (forward > 0)
                    co_await asio::async_write(server->socket(), asio::buffer(v.data(), forward),
                                               net::use_nothrow);
                in_.consume(forward);
                if (server_) {
                    auto s = server_;
                    server_ = nullptr;
                    pool_->release(s, true);
                }
                {
                    queue_error(fatal(sqlstate::kProtocolViolation, "protocol violation: " + why));
                    co_await flush_client_out();
                }
                close_reason_ = "protocol violation: " + why;
                co_return;
            }
            if (seg.kind != pg::SegmentKind::kRest) {
                if (seg.type == 'X') {
                    terminate = true;
                    break;
                }
                server->note_client_message(seg.type);
                // control plane (issue 5): the last statement, for the leak report
                // (a Query is streamed: its first piece holds the start of the text)
                if ((seg.kind == pg::SegmentKind::kWhole || seg.kind == pg::SegmentKind::kStart) &&
                    (seg.type == 'Q' || seg.type == 'P') && seg.bytes.size() > 5)
                    note_statement(seg.type, seg.bytes.substr(5));
            }
            if (tracking) {
                // Named prepared statements: Parse/Bind/Describe/Close are rewritten for this server.
                if (seg.kind == pg::SegmentKind::kWhole && pg::Rewriter::must_inspect(seg.type)) {
                    auto st =
                        rewriter_.on_client_message(seg.type, seg.body(), statements_, server->statements(),
                                                    server->responses(), to_server_);
                    if (!st) {
                        rewrite_error = st.error().message;
                        break;
                    }
                } else {
                    if (seg.kind != pg::SegmentKind::kRest)
                        rewriter_.on_passthrough(seg.type, statements_, server->statements(),
                                                 server->responses());
                    to_server_.append(seg.bytes);
                }
            }
            forward += seg.bytes.size();
        }
        server->note_client_partial(!scanner_.at_boundary());
        if (!rewrite_error.empty()) {
            in_.consume(forward);
            kill("protocol violation: " + rewrite_error);
            co_return;
        }
        if (tracking) {
            // Answers poolguard gives itself (a Parse the server already knows, a Close) that nothing pending
            // on the server precedes go out now, before the server can answer what follows them, and never
            // interleaved with relayed replies (the write gate).
            server->responses().append_ready_fakes(fakes_);
            if (!fakes_.empty()) {
                drained = false;
                while (write_gate_.busy())
                    co_await write_gate_.wait();
                write_gate_.lock();
                co_await asio::async_write(socket_, asio::buffer(fakes_), net::use_nothrow);
                write_gate_.unlock();
                fakes_.clear();
            }
        }
        // What goes to the server: the client's bytes as they are, or their rewritten form.
        const std::string_view outgoing = tracking ? std::string_view(to_server_) : v.substr(0, forward);
        if (!outgoing.empty() || !server->pending_out().empty()) {
            std::string pending = std::move(server->pending_out());
            server->pending_out().clear();
            std::array<asio::const_buffer, 2> bufs{asio::buffer(pending), asio::buffer(outgoing)};
            // Straight to the kernel when the server's socket has room (the usual case); only the rest waits
            // in an asynchronous write. A failed write means the server died; its relay reports that to us
            // through on_server_lost.
            std::error_code ec;
            net::send_available(server->socket(), bufs, ec);
            if (!ec && net::bytes_left(bufs) > 0) {
                drained = false;
                co_await asio::async_write(server->socket(), bufs, net::use_nothrow);
            }
        }
        pool_->stats().bytes_received += forward;
        in_.consume(forward);

        if (want_unread > 0) in_.reserve_unread(want_unread);
        if (terminate) {
            close_reason_ = "client sent Terminate";
            co_return;
        }
        if (closing_) co_return;
    }
}

void ClientSession::terminate_with(const pg::ErrorFields& error) {
    std::string out;
    pg::append_error(out, error);
    net::send_now(socket_, out);
    close_reason_ = error.message;
    close_socket();
}

namespace {
constexpr uint8_t kParkAfterChecks = 10;
}

void ClientSession::check_timeouts(std::chrono::steady_clock::time_point now) {
    if (closing_ || !logged_in_) return;
    // Waiting for input since at least the previous janitor pass with an empty buffer: give the buffer
    // back (idle clients then cost no read buffer; the next read allocates one).
    if (awaiting_input_ && reads_ == reads_at_last_check_) {
        in_.shrink_if_idle(0);
        // Idle for about a second (janitor passes are 100 ms apart) with no server: park (see
        // park_if_requested). Not sooner, so that a client with a short think time does not pay a
        // coroutine start per request.
        if (!admin_ && !server_ && !waiting_ && in_.empty() && !park_requested_ &&
            ++idle_checks_ >= kParkAfterChecks) {
            park_requested_ = true;
            std::error_code ignored;
            socket_.cancel(ignored);  // relay()'s wait ends with operation_aborted and sees park_requested_
        }
    } else {
        idle_checks_ = 0;
    }
    reads_at_last_check_ = reads_;
    const auto& cfg = proxy_.config();
    if (server_) {
        auto s = server_;
        if (cfg.query_timeout.count() > 0 && s->busy_for_client() &&
            now - s->busy_since() > cfg.query_timeout) {
            // The query is cancelled on the server and the connection closed: its state is unknown.
            server_ = nullptr;
            s->unlink();
            s->send_cancel();
            s->close("query_timeout");
            terminate_with(fatal(sqlstate::kQueryCanceled, "query_timeout"));
            return;
        }
        if (cfg.idle_transaction_timeout.count() > 0 && s->tx_status() != 'I' && !s->busy_for_client() &&
            now - s->ready_since() > cfg.idle_transaction_timeout) {
            server_ = nullptr;
            s->unlink();
            pool_->release(s, true);  // rolls the transaction back before anyone else gets the server
            terminate_with(fatal("25P03", "idle transaction timeout"));
            return;
        }
        return;
    }
    if (!waiting_ && cfg.client_idle_timeout.count() > 0 && now - idle_since_ > cfg.client_idle_timeout)
        terminate_with(fatal("57P05", "client_idle_timeout"));
    if (waiting_ && !wait_notified_ && cfg.query_wait_notify.count() > 0 &&
        now - wait_started_ >= cfg.query_wait_notify) {
        // Tell the waiting client (psql shows it at once) why nothing happens yet; nothing else writes to
        // the client while it waits for a server.
        wait_notified_ = true;
        std::string out;
        pg::append_notice(out, "No server connection available in " + pool_->database() + " pool, waiting");
        if (write_gate_.busy()) {
            wait_notified_ = false;  // try again at the next tick
        } else if (!net::send_now(socket_, out)) {
            // A client that does not even read its socket; a partial message would corrupt the stream.
            close_reason_ = "could not send the query_wait_notify NOTICE";
            close_socket();
        }
    }
}

// ---- control plane (issue 5) ----
void ClientSession::note_statement(char type, std::string_view body) {
    constexpr size_t kMax = 256;
    if (type == 'P') {  // Parse: statement name, then the query text
        const size_t nul = body.find('\0');
        body = nul == std::string_view::npos ? std::string_view{} : body.substr(nul + 1);
    }
    const size_t end = body.find('\0');
    if (end != std::string_view::npos) body = body.substr(0, end);
    last_statement_.assign(body.substr(0, kMax));
}
// ---- end control plane ----

void ClientSession::on_server_parameter(const std::string& name, const std::string& value) {
    if (!tracked(name)) return;
    const std::string* have = vars_.find(name);
    if (have && *have == value) return;
    vars_.set(name, value);
    param_set_.reset();
}

void ClientSession::on_server_released() {
    server_ = nullptr;
    idle_since_ = std::chrono::steady_clock::now();
    if (proxy_.shutting_down()) {
        std::string out;
        pg::append_error(out, fatal(sqlstate::kAdminShutdown, "poolguard is shutting down"));
        net::send_now(socket_, out);
        close_reason_ = "poolguard is shutting down";
        close_socket();
    }
}

void ClientSession::on_server_lost(const pg::ErrorFields& error) {
    server_ = nullptr;
    std::string out;
    pg::append_error(out, error);
    net::send_now(socket_, out);
    close_reason_ = error.message + (error.detail.empty() ? "" : " (" + error.detail + ")");
    close_socket();
}

void ClientSession::on_protocol_refusal(const pg::ErrorFields& error) {
    server_ = nullptr;
    std::string out;
    auto e = error;
    e.severity = "FATAL";
    pg::append_error(out, e);
    net::send_now(socket_, out);
    close_reason_ = error.message;
    close_socket();
}

bool ClientSession::on_shutdown(std::chrono::steady_clock::time_point now) {
    // Logins in progress finish (they were accepted before the listener closed); a client that just logged
    // in gets a moment for its first query, so a rolling restart under load loses nobody.
    if (!logged_in_ || waiting_) return false;
    if (!server_ && now - idle_since_ < std::chrono::seconds(1)) return false;
    if (server_) {
        if (!server_->at_release_point()) return false;  // a transaction is in flight: closed when it ends
        auto s = server_;
        server_ = nullptr;
        s->unlink();
        pool_->release(s, false);
    }
    std::string out;
    pg::append_error(out, fatal(sqlstate::kAdminShutdown, "poolguard is shutting down"));
    net::send_now(socket_, out);
    close_reason_ = "poolguard is shutting down";
    close_socket();
    return true;
}

void ClientSession::cancel_running_query() {
    if (server_) server_->send_cancel();
}

}  // namespace poolguard::session
