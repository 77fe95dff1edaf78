// Owns ClientSession's login: the startup packet (SSL and cancel requests included), authentication of the
// client (trust, plain, md5, SCRAM, auth_query), the admin console's login and command loop, and the first
// server binding that answers the login with the server's parameters.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>

#include "admin/admin_console.h"
#include "common/dataplane_counters.h"
#include "common/secure_random.h"
#include "protocol/pg/md5_auth.h"
#include "protocol/pg/scram.h"
#include "protocol/pg/startup_negotiation.h"
#include "protocol/pg/userlist.h"
#include "protocol/pg/wire.h"
#include "session/auth_query.h"
#include "session/cancel_key.h"
#include "session/client_session.h"
#include "session/proxy.h"
#include "session/refusal_log.h"
#include "session/session_helpers.h"

namespace poolguard::session {

namespace pg = protocol::pg;
using detail::fatal;
using detail::kMaxAuthMessage;
using detail::lowercase;
using detail::tracked;

asio::awaitable<Status> ClientSession::read_startup() {
    // Login must finish within client_login_timeout, or a silent client would hold a slot forever.
    asio::steady_timer login_timer(socket_.get_executor());
    // One configuration for the whole login (issue 15): a RELOAD or admin SET during a slow SCRAM exchange or
    // an auth_query replaces the proxy's, and a reference into it would then read freed memory.
    const std::shared_ptr<const config::Config> cfg_snapshot = proxy_.config_snapshot();
    const config::Config& cfg = *cfg_snapshot;
    const auto login_timeout = cfg.client_login_timeout;
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
                log_refusal(Rejection::kLoginTimeout, this_->id_, this_->peer_, this_->peer_port_,
                            "client_login_timeout");
                auto& socket_ = this_->socket_;
                std::string out;
                pg::append_error(out, fatal(ErrorKind::kLoginTimeout, "client_login_timeout"));
                net::send_now(socket_, out);
                this_->close_socket();
            }
        });
    }
    struct CancelTimer {
        asio::steady_timer& t;
        ~CancelTimer() { t.cancel(); }
    } cancel_guard{login_timer};

    {
        Status direct = co_await maybe_direct_tls();
        if (!direct) co_return fail(timed_out ? "client_login_timeout" : direct.error().message);
    }
    while (true) {
        // A startup-phase packet: int32 length (including itself), then the rest.
        char len_buf[4];
        auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(len_buf), net::use_nothrow);
        if (ec) co_return fail(timed_out ? "client_login_timeout" : "");
        const uint32_t len = pg::read_be32(len_buf);
        if (len < 8 || len > pg::kMaxStartupPacket) {
            log_refusal(Rejection::kBadStartupPacket, id_, peer_, peer_port_,
                        "invalid startup packet length " + std::to_string(len));
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
            log_refusal(pg::read_be32(packet.data() + 4) == pg::kCancelRequestCode ? Rejection::kBadCancel
                        : sp.error().sqlstate == sqlstate::kFeatureNotSupported
                            ? Rejection::kUnsupportedProtocol
                            : Rejection::kBadStartupPacket,
                        id_, peer_, peer_port_, sp.error().message);
            {
                queue_error(fatal(sp.error().sqlstate, sp.error().message));
                co_await flush_client_out();
            }
            co_return fail(sp.error().message);
        }
        switch (sp->kind) {
            case pg::StartupKind::kSslRequest:
            case pg::StartupKind::kGssEncRequest: {
                // 'S' and a TLS handshake when client TLS is configured, else 'N' (client_tls.cpp).
                auto st = co_await answer_encryption_request(sp->kind == pg::StartupKind::kGssEncRequest);
                if (!st) co_return fail(timed_out ? "client_login_timeout" : st.error().message);
                continue;
            }
            case pg::StartupKind::kCancel: {
                logged_in_ = false;
                const CancelKey key{sp->cancel_pid, sp->cancel_key};
                if (auto peer = route_cancel(key, cfg); peer.forward) {
                    // Peering: the key names another [peers] process (a load balancer sent the request
                    // here); it goes there, with the TTL one lower (at most 3 hops).
                    std::string why = std::move(peer.refusal);
                    if (why.empty())
                        why = co_await proxy_.peer_cancels().forward(key, std::move(peer.peer), peer.limit,
                                                                     peer.timeout);
                    if (!why.empty()) log_refusal(Rejection::kBadCancel, id_, peer_, peer_port_, why);
                    co_return fail("");
                }
                if (!proxy_.forward_cancel(sp->cancel_pid, sp->cancel_key))
                    log_refusal(Rejection::kBadCancel, id_, peer_, peer_port_,
                                "no client holds that cancel key");
                co_return fail("");
            }
            case pg::StartupKind::kStartup:
                break;
        }
        // A newer 3.x minor version or `_pq_.` options: serve 3.0 and say so (issue 15).
        if (auto negotiate = pg::negotiate_protocol(*sp); !negotiate.empty()) {
            client_out_ += negotiate;
            co_await flush_client_out();
        }

        if (auto st = check_client_tls(); !st) {  // client_tls_sslmode = require and up: TLS only
            co_await flush_client_out();
            co_return st;
        }
        if (static_cast<int>(proxy_.client_count()) > cfg.max_client_conn) {
            {
                queue_error(
                    fatal(sqlstate::kTooManyConnections, "no more connections allowed (max_client_conn)"));
                co_await flush_client_out();
            }
            log_refusal(
                Rejection::kMaxClientConn, id_, peer_, peer_port_,
                "no more connections allowed (max_client_conn=" + std::to_string(cfg.max_client_conn) + ")");
            dataplane_counters().refused_max_client_conn++;  // control plane (issue 5)
            co_return fail("no more connections allowed (max_client_conn)");
        }

        // `options` first (-c name=value): parameters of their own in the packet override it, as in
        // PostgreSQL.
        if (auto st = apply_startup_options(sp->params); !st) {
            {
                queue_error(fatal(st.error().sqlstate, st.error().message));
                co_await flush_client_out();
            }
            co_return fail(st.error().message);
        }
        for (const auto& [key, value] : sp->params) {
            const auto lower = lowercase(key);
            if (lower == "options") {
                continue;
            } else if (lower == "user") {
                user_ = value;
            } else if (lower == "database") {
                database_ = value;
            } else if (lower == "replication") {
                auto kind = parse_replication(value);
                if (!kind) {
                    auto msg = "invalid value for parameter \"replication\": \"" + value + "\"";
                    {
                        queue_error(fatal(sqlstate::kProtocolViolation, msg));
                        co_await flush_client_out();
                    }
                    co_return fail(msg);
                }
                replication_ = *kind;
            } else if (tracked(lower, cfg)) {
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
        // application_name_add_host: "<application_name> - <address>:<port>", as PgBouncer 1.25 writes it
        // ("app" when the client sent none); TCP clients only. Later SETs are the client's own.
        if (cfg.application_name_add_host && peer_ != "unix") {
            const std::string* app = vars_.find("application_name");
            const std::string name = app != nullptr && !app->empty() ? *app : std::string("app");
            vars_.set("application_name", name + " - " + peer_ + ":" + std::to_string(peer_port_));
        }
        break;
    }

    if (database_ == "pgbouncer" || database_ == "poolguard") co_return co_await admin_login();
    if (admin_only_) {  // during a shutdown the Unix socket serves admin consoles only, as PgBouncer 1.23+
        queue_error(fatal(sqlstate::kAdminShutdown, "pooler is shutting down"));
        co_await flush_client_out();
        co_return fail("pooler is shutting down");
    }
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
        // As PgBouncer 1.24+: the client goes through the password exchange first (auth_file secret, else a
        // dummy one that fails), so a login cannot probe which databases exist.
        auto msg = "no such database: " + database_;
        std::string known_secret = proxy_.secret_for(user_).value_or("");
        if (known_secret.empty() && !cfg.auth_user.empty() && !cfg.auth_dbname.empty()) {
            // Not in the auth_file: auth_query in the global auth_dbname (the only database known to use).
            if (auto auth_db = cfg.resolve_database(cfg.auth_dbname)) {
                auto looked = co_await lookup_secret(proxy_, *auth_db, cfg.auth_user, user_);
                if (looked && *looked) known_secret = **looked;
            }
        }
        auto known = co_await authenticate_login(known_secret);
        {
            if (known)
                queue_error(fatal(sqlstate::kInvalidCatalogName, msg));
            else
                queue_error(fatal(known.error().sqlstate, known.error().message));
            co_await flush_client_out();
        }
        if (!known) msg = known.error().message;
        if (cfg.log_pooler_errors) spdlog::warn("C-{}: {}:{} {}", id_, peer_, peer_port_, msg);
        co_return fail(msg);
    }

    auto secret = proxy_.secret_for(user_);
    if (!secret && cfg.auth_type != config::AuthType::kTrust && cfg.auth_type != config::AuthType::kAny) {
        // Not in the auth_file: ask the database itself (auth_user + auth_query), as PgBouncer does.
        std::optional<config::DatabaseConfig> auth_db_storage;
        const AuthQueryTarget lookup = auth_query_target(cfg, *db, auth_db_storage);
        if (!lookup.auth_user.empty()) {
            auto looked =
                co_await lookup_secret(proxy_, *lookup.database, lookup.auth_user, user_, lookup.query);
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
    auto st = co_await authenticate_login(client_secret);
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
    // max_db_client_connections / max_user_client_connections (PgBouncer 1.25), for authenticated clients.
    {
        std::string refused_by;
        client_slot_ = proxy_.client_caps().try_acquire(
            db->name, cfg.effective_max_db_client_connections(*db), user_,
            cfg.effective_max_user_client_connections(cfg.find_user(user_)), refused_by);
        if (!client_slot_.held()) {
            const std::string msg = "client connections exceeded (" + refused_by + ")";
            queue_error(fatal(sqlstate::kProtocolViolation, msg));
            co_await flush_client_out();
            if (cfg.log_pooler_errors)
                spdlog::warn("C-{}: {}/{}@{}:{} refused: {}", id_, database_, user_, peer_, peer_port_, msg);
            co_return fail(msg);
        }
    }
    if (replication_ != Replication::kNone) {
        // Replication: a server of its own, opened with the client's parameters (replication_pool.cpp).
        pool_ = &replication_pool(*db, client_secret);
    } else if (db->user.empty()) {
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
    const std::shared_ptr<const config::Config> cfg_snapshot = proxy_.config_snapshot();  // across the awaits
    const config::Config& cfg = *cfg_snapshot;
    auto listed = [&](const std::vector<std::string>& users) {
        return std::find(users.begin(), users.end(), user_) != users.end();
    };
    const bool peer_admin = admin_peer_login();
    if (peer_admin) {
        if (cfg.log_connections) spdlog::info("C-{}: pgbouncer access from unix socket", id_);
    } else {
        const std::string admin_secret = proxy_.secret_for(user_).value_or("");
        auto st = co_await authenticate_login(admin_secret);
        if (!st) {
            {
                queue_error(fatal(st.error().sqlstate, st.error().message));
                co_await flush_client_out();
            }
            co_return fail(st.error().message);
        }
    }
    if (!peer_admin && !listed(cfg.admin_users) && !listed(cfg.stats_users)) {
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
    admin_can_modify_ = peer_admin || listed(cfg.admin_users);
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
        auto msg = co_await read_admin_message();
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
                // WAIT_CLOSE / SUSPEND: this console waits here; the others go on (each its own coroutine).
                while (const auto& wait = console.pending_wait()) {
                    if (!co_await admin_wait(*wait)) co_return;
                    console.resume(out);
                }
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

asio::awaitable<Status> ClientSession::authenticate(const std::string& secret, config::AuthType type) {
    const auto failed = [this]() {
        return fail("password authentication failed for user \"" + user_ + "\"", sqlstate::kInvalidPassword);
    };
    if (type == config::AuthType::kTrust || type == config::AuthType::kAny) co_return Status{};
    if (type == config::AuthType::kCert) {
        // The verified client certificate's common name is the user name (client_tls.cpp reads it).
        if (socket_.is_tls() && !client_cert_name_.empty() && client_cert_name_ == user_) co_return Status{};
        co_return fail("certificate authentication failed for user \"" + user_ + "\"",
                       sqlstate::kInvalidAuthorization);
    }
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
        // From OpenSSL's generator: unpredictable, and a std::random_device per login cost 3.4 µs.
        std::array<uint8_t, 4> salt{};
        if (!secure_random(salt)) {
            const uint64_t r = uint64_t{cancel_key_} * 0x9e3779b97f4a7c15ull ^ static_cast<uint64_t>(id_);
            std::memcpy(salt.data(), &r, salt.size());
        }
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
    if (!known)
        verifier =
            pg::scram_secret_for_plain_password("poolguard-no-such-user", proxy_.config().scram_iterations);
    pg::ScramServer server(*verifier);
    // Over TLS, SCRAM-SHA-256-PLUS with tls-server-end-point too (libpq channel_binding=require).
    const std::string end_point = net::server_end_point(socket_);
    const bool plus = !end_point.empty();
    if (plus)
        pg::append_sasl_mechanisms(out, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
    else
        pg::append_sasl_mechanisms(out, {"SCRAM-SHA-256"});
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
    if (ec) co_return fail("client disconnected during authentication");
    auto first = co_await read_auth_message();
    if (!first) co_return std::unexpected(first.error());
    if (first->first != 'p') co_return fail("expected SASL response", sqlstate::kProtocolViolation);
    auto initial = pg::parse_sasl_initial(first->second);
    if (!initial) co_return fail("malformed SASLInitialResponse message", sqlstate::kProtocolViolation);
    const bool chose_plus = plus && initial->first == "SCRAM-SHA-256-PLUS";
    if (initial->first != "SCRAM-SHA-256" && !chose_plus)
        co_return fail("client selected an invalid SASL authentication mechanism",
                       sqlstate::kProtocolViolation);
    server.set_channel_binding(plus, chose_plus, chose_plus ? end_point : std::string());
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
        if (tracked(lower, proxy_.config())) {
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

}  // namespace poolguard::session
