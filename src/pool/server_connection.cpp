// Owns ServerConnection: one connection to a PostgreSQL server — login, the relay of its replies to the
// linked client, ReadyForQuery tracking, and the clean-up that makes it safe to hand to the next client.
#include "pool/server_connection.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "config/tracked_parameters.h"
#include "net/fast_write.h"
#include "pool/pool.h"
#include "protocol/pg/md5_auth.h"
#include "protocol/pg/messages.h"
#include "protocol/pg/scram.h"
#include "protocol/pg/userlist.h"
#include "protocol/pg/wire.h"

namespace poolguard::pool {

namespace pg = protocol::pg;

namespace {
constexpr uint32_t kMaxServerMessage = 0x7fffffff;
constexpr uint32_t kMaxWholeServerMessage = 16 << 20;  // Z, S, G, K are tiny; E may carry a long DETAIL
constexpr size_t kLoginMessageMax = 1 << 20;

// Every parameter a client may have tracked (whether this one's client does is the session's business).
bool is_tracked_parameter(const std::string& lower) {
    return config::trackable_index(lower) >= 0;
}

std::string lowercase(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}
}  // namespace

ServerConnection::ServerConnection(asio::any_io_executor executor, Pool* pool, uint64_t id)
    : socket_(net::Socket(executor)),
      pool_(pool),
      id_(id),
      in_(8 * 1024),
      scanner_(kMaxServerMessage, kMaxWholeServerMessage),
      created_at_(Clock::now()),
      last_used_(created_at_),
      drain_timer_(executor) {
    // 'C' is needed whole by the prepared-statement tracking (DISCARD ALL / DEALLOCATE ALL tags).
    for (char t : {'Z', 'S', 'E', 'G', 'K', 'C'})
        scanner_.set_whole(t);
}

ServerConnection::~ServerConnection() = default;

asio::awaitable<Status> ServerConnection::connect(const ServerTarget& target) {
    host_ = target.host;
    port_ = target.port;
    if (target.hosts.size() < 2) {
        auto sock = co_await net::connect_to_server(target.host, target.port, target.connect_timeout);
        if (!sock) co_return std::unexpected(sock.error());
        socket_ = net::Stream(std::move(*sock));
    } else {
        auto sock = co_await connect_to_host_list(target);
        if (!sock) co_return std::unexpected(sock.error());
        socket_ = net::Stream(std::move(*sock));
    }

    // The whole login must finish within the connect timeout, or a silent server would hold a slot forever.
    asio::steady_timer timer(socket_.get_executor());
    auto timed_out_flag = std::make_shared<bool>(false);
    auto done = std::make_shared<bool>(false);
    timer.expires_after(target.connect_timeout);
    timer.async_wait([self = shared_from_this(), timed_out_flag, done](std::error_code ec) {
        if (!ec && !*done) {
            *timed_out_flag = true;
            std::error_code ignored;
            self->socket_.close(ignored);
        }
    });
    // g++ 12: no co_await inside a conditional expression (it mis-destroys the temporaries).
    Status st;
    if (target.tls) st = co_await negotiate_tls(target);
    if (st) st = co_await login(target);
    if (st && !target.connect_query.empty()) st = co_await run_connect_query(target.connect_query);
    *done = true;
    timer.cancel();
    const bool timed_out = *timed_out_flag;
    if (!st) {
        if (timed_out)
            st = fail("server login timed out (server_connect_timeout)", sqlstate::kConnectionFailure);
        std::error_code ignored;
        socket_.close(ignored);
        state_ = State::kClosed;
        close_reason_ = st.error().message;
        co_return st;
    }
    state_ = State::kActive;
    created_at_ = last_used_ = Clock::now();
    asio::co_spawn(socket_.get_executor(), relay_loop(), net::LogIfThrown{"server relay"});
    co_return Status{};
}

asio::awaitable<Result<net::Socket>> ServerConnection::connect_to_host_list(const ServerTarget& target) {
    // A dead or unresolvable host is skipped: the next one is tried, all within connect_timeout. Each host
    // gets an equal share of it (at least half a second), the last one whatever is left, so a host that
    // swallows packets cannot use up the time of the ones after it.
    const auto deadline = Clock::now() + target.connect_timeout;
    const auto share = std::max(std::chrono::milliseconds(500),
                                target.connect_timeout / static_cast<int>(target.hosts.size()));
    Error last = Error::make("no host to connect to", sqlstate::kConnectionFailure);
    for (size_t i = 0; i < target.hosts.size(); ++i) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) break;
        host_ = target.hosts[i].host;
        port_ = target.hosts[i].port;
        host_index_ = i;
        const auto budget = i + 1 == target.hosts.size() ? left : std::min(left, share);
        auto sock = co_await net::connect_to_server(host_, port_, budget);
        if (sock) co_return std::move(*sock);
        last = sock.error();
        if (i + 1 < target.hosts.size())
            spdlog::warn("S-{}: {}; trying the next host of the list", id_, last.message);
    }
    co_return std::unexpected(last);
}

asio::awaitable<Result<std::pair<char, std::string>>> ServerConnection::read_login_message() {
    while (true) {
        auto v = in_.view();
        if (v.size() >= 5) {
            const uint32_t len = pg::read_be32(v.data() + 1);
            if (len < 4 || len > kLoginMessageMax)
                co_return fail("server sent an invalid message during login", sqlstate::kProtocolViolation);
            if (v.size() >= size_t{1} + len) {
                std::pair<char, std::string> msg{v[0], std::string(v.substr(5, len - 4))};
                in_.consume(size_t{1} + len);
                co_return msg;
            }
            in_.reserve_unread(size_t{1} + len);
        }
        char* p = in_.write_ptr(4096);
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(p, in_.write_space()), net::use_nothrow);
        if (ec)
            co_return fail("server closed the connection during login: " + ec.message(),
                           sqlstate::kConnectionFailure);
        in_.commit(n);
    }
}

asio::awaitable<Status> ServerConnection::login(const ServerTarget& target) {
    std::string out;
    std::vector<std::pair<std::string, std::string>> params{{"user", target.user},
                                                            {"database", target.dbname}};
    for (const auto& p : target.startup_params)
        params.push_back(p);
    pg::append_startup(out, params);
    auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
    if (wec) co_return fail("could not send startup packet: " + wec.message(), sqlstate::kConnectionFailure);

    std::optional<pg::ScramClient> scram;
    const auto kind = pg::classify_secret(target.secret);
    while (true) {
        auto msg = co_await read_login_message();
        if (!msg) co_return std::unexpected(msg.error());
        const auto& [type, body] = *msg;
        out.clear();
        switch (type) {
            case 'R': {
                auto req = pg::parse_auth_request(body);
                if (!req)
                    co_return fail("malformed authentication request from server",
                                   sqlstate::kProtocolViolation);
                switch (static_cast<pg::AuthRequest>(req->first)) {
                    case pg::AuthRequest::kOk:
                        break;
                    case pg::AuthRequest::kCleartextPassword:
                        if (kind != pg::SecretKind::kPlain || target.secret.empty())
                            co_return fail(
                                "server asked for a cleartext password but poolguard has no plain password "
                                "for user \"" +
                                    target.user + "\"",
                                sqlstate::kInvalidPassword);
                        pg::append_password(out, target.secret);
                        break;
                    case pg::AuthRequest::kMd5Password: {
                        if (req->second.size() < 4 || kind == pg::SecretKind::kScramSha256 ||
                            target.secret.empty())
                            co_return fail(
                                "server asked for md5 authentication but poolguard has no usable password "
                                "for user \"" +
                                    target.user + "\"",
                                sqlstate::kInvalidPassword);
                        std::array<uint8_t, 4> salt;
                        std::memcpy(salt.data(), req->second.data(), 4);
                        pg::append_password(out, pg::md5_salted_response(target.secret, target.user, salt));
                        break;
                    }
                    case pg::AuthRequest::kSasl: {
                        auto mechs = pg::parse_sasl_mechanisms(req->second);
                        if (std::find(mechs.begin(), mechs.end(), "SCRAM-SHA-256") == mechs.end())
                            co_return fail("server offers no supported SASL mechanism",
                                           sqlstate::kFeatureNotSupported);
                        if (kind == pg::SecretKind::kScramSha256 && target.scram_keys) {
                            // Pass-through: the keys of a client that logged in with SCRAM.
                            scram.emplace(pg::ScramClient::from_keys(target.scram_keys->client_key,
                                                                     target.scram_keys->server_key));
                        } else if (kind != pg::SecretKind::kPlain || target.secret.empty()) {
                            co_return fail(
                                "server asked for SCRAM authentication but poolguard has no plain password "
                                "for user \"" +
                                    target.user + "\"" +
                                    (kind == pg::SecretKind::kScramSha256
                                         ? " (a SCRAM secret is used once a client has logged in with SCRAM)"
                                         : ""),
                                sqlstate::kInvalidPassword);
                        } else {
                            scram.emplace(target.secret);
                        }
                        pg::append_sasl_initial(out, "SCRAM-SHA-256", scram->client_first_message());
                        break;
                    }
                    case pg::AuthRequest::kSaslContinue: {
                        if (!scram)
                            co_return fail("unexpected SASL continue from server",
                                           sqlstate::kProtocolViolation);
                        auto final_msg = scram->handle_server_first(req->second);
                        if (!final_msg) co_return std::unexpected(final_msg.error());
                        pg::append_sasl_response(out, *final_msg);
                        break;
                    }
                    case pg::AuthRequest::kSaslFinal: {
                        if (!scram)
                            co_return fail("unexpected SASL final from server", sqlstate::kProtocolViolation);
                        auto st = scram->verify_server_final(req->second);
                        if (!st) co_return std::unexpected(st.error());
                        break;
                    }
                    default:
                        co_return fail("server requested an unsupported authentication method (" +
                                           std::to_string(req->first) + ")",
                                       sqlstate::kFeatureNotSupported);
                }
                if (!out.empty()) {
                    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
                    if (ec)
                        co_return fail("could not send authentication: " + ec.message(),
                                       sqlstate::kConnectionFailure);
                }
                break;
            }
            case 'E': {
                auto e = pg::parse_error_fields(body);
                co_return fail(e.message, e.sqlstate.empty() ? sqlstate::kConnectionFailure : e.sqlstate);
            }
            case 'S': {
                if (auto ps = pg::parse_parameter_status(body)) {
                    reported_[ps->first] = ps->second;
                    auto lower = lowercase(ps->first);
                    if (is_tracked_parameter(lower)) params_[lower] = ps->second;
                }
                break;
            }
            case 'K': {
                if (auto key = pg::parse_backend_key(body)) {
                    backend_pid_ = key->first;
                    backend_key_ = key->second;
                }
                break;
            }
            case 'N':
                break;
            case 'Z':
                if (!body.empty()) tx_status_ = body[0];
                co_return Status{};
            default:
                co_return fail(std::string("unexpected message '") + type + "' from server during login",
                               sqlstate::kProtocolViolation);
        }
    }
}

asio::awaitable<Status> ServerConnection::run_connect_query(const std::string& sql) {
    std::string out;
    pg::append_query(out, sql);
    auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
    if (wec) co_return fail("could not send connect_query: " + wec.message(), sqlstate::kConnectionFailure);
    std::optional<pg::ErrorFields> error;
    while (true) {
        auto msg = co_await read_login_message();
        if (!msg) co_return std::unexpected(msg.error());
        const auto& [type, body] = *msg;
        if (type == 'E') {
            error = pg::parse_error_fields(body);
        } else if (type == 'S') {
            if (auto ps = pg::parse_parameter_status(body)) {
                reported_[ps->first] = ps->second;
                auto lower = lowercase(ps->first);
                if (is_tracked_parameter(lower)) params_[lower] = ps->second;
            }
        } else if (type == 'Z') {
            if (!body.empty()) tx_status_ = body[0];
            break;
        }
    }
    if (error)
        co_return fail("connect_query failed: " + error->message,
                       error->sqlstate.empty() ? std::string(sqlstate::kConnectionFailure) : error->sqlstate);
    if (tx_status_ != 'I')
        co_return fail("connect_query left a transaction open", sqlstate::kConnectionFailure);
    co_return Status{};
}

void ServerConnection::link(LinkedClient* client) {
    // Fault.FastRestartUnderLoad hung a client about 1 run in 6: linking set kActive on a server closed by
    // its backend's 57P01 while it was on its way to a waiter, so the client's closed() check passed, it
    // sent BEGIN to a socket nobody read any more, and waited for good.
    if (state_ == State::kClosed) return;
    client_ = client;
    state_ = State::kActive;
    last_used_ = ready_since_ = Clock::now();
}

void ServerConnection::note_client_message(char type) {
    if (expected_rfq_ == 0 && !extended_open_) {
        busy_since_ = Clock::now();
        if (tx_status_ == 'I') xact_since_ = busy_since_;
    }
    switch (type) {
        case 'Q':
        case 'F':
            ++expected_rfq_;
            break;
        case 'S':
            ++expected_rfq_;
            extended_open_ = false;
            break;
        case 'P':
        case 'B':
        case 'E':
        case 'D':
        case 'C':
        case 'H':
            extended_open_ = true;
            break;
        case 'c':
        case 'f':
            copy_in_ = false;
            break;
        default:
            break;
    }
}

void ServerConnection::queue_internal_query(std::string_view sql) {
    pg::append_query(pending_out_, sql);
    ++swallow_rfq_;
}

void ServerConnection::note_parameter_sets(std::vector<std::pair<std::string, std::string>> sets) {
    pending_sets_ = std::move(sets);
    pending_sets_rfq_ = swallow_rfq_;  // the SET is the last internal query queued
    pending_sets_errors_ = internal_errors_;
}

void ServerConnection::begin_cleanup(bool reset_query, const std::string& reset_sql) {
    state_ = State::kCleanup;
    if (tx_status_ != 'I') queue_internal_query("ROLLBACK");
    if (reset_query && !reset_sql.empty()) {
        queue_internal_query(reset_sql);
        if (statements_) statements_->clear();  // DISCARD ALL drops the server's prepared statements
    }
    send_cleanup();
}

void ServerConnection::begin_check(const std::string& sql) {
    state_ = State::kCleanup;
    testing_ = true;
    queue_internal_query(sql);
    send_cleanup();
}

void ServerConnection::send_cleanup() {
    if (pending_out_.empty()) {
        finish_cleanup();
        return;
    }
    auto self = shared_from_this();
    auto data = std::make_shared<std::string>(std::move(pending_out_));
    pending_out_.clear();
    asio::async_write(socket_, asio::buffer(*data), [self, data](std::error_code ec, size_t) {
        if (ec) self->close("could not send clean-up query: " + ec.message());
    });
}

void ServerConnection::finish_cleanup() {
    if (state_ != State::kCleanup) return;
    if (tx_status_ != 'I') {
        close("server still in a transaction after clean-up");
        return;
    }
    if (!last_internal_error_.empty()) {
        close((testing_ ? "check query failed: " : "clean-up query failed: ") + last_internal_error_);
        return;
    }
    if (testing_) {
        testing_ = false;
        just_checked_ = true;  // put_back keeps last_used: a check is not use (server_idle_timeout)
        last_checked_ = Clock::now();
    }
    state_ = State::kActive;
    if (pool_) pool_->put_back(shared_from_this());
}

void ServerConnection::send_cancel() {
    if (backend_pid_ == 0) return;
    auto host = host_;
    auto port = port_;
    auto pid = backend_pid_;
    auto key = backend_key_;
    const auto budget = pool_ ? pool_->settings().cancel_timeout : std::chrono::milliseconds(10000);
    asio::co_spawn(
        socket_.get_executor(),
        [host, port, pid, key, budget]() -> asio::awaitable<void> {
            // cancel_wait_timeout bounds the whole delivery: a server that does not take it in time is
            // given up on (the cancel connection is closed), never waited for forever.
            const auto deadline = std::chrono::steady_clock::now() + budget;
            auto sock = co_await net::connect_to_server(host, port, budget);
            if (!sock) {
                spdlog::warn("cancel request to server {}:{} failed: {}", host, port, sock.error().message);
                co_return;
            }
            auto s = std::make_shared<net::Socket>(std::move(*sock));
            auto timed_out = std::make_shared<bool>(false);
            asio::steady_timer timer(s->get_executor());
            timer.expires_at(deadline);
            timer.async_wait([s, timed_out](std::error_code ec) {
                if (ec) return;
                *timed_out = true;
                std::error_code ignored;
                s->close(ignored);
            });
            std::string out;
            pg::append_cancel_request(out, pid, key);
            co_await asio::async_write(*s, asio::buffer(out), net::use_nothrow);
            // The server closes the connection when done; wait for that so the cancel is delivered.
            char b[16];
            co_await s->async_read_some(asio::buffer(b), net::use_nothrow);
            timer.cancel();
            if (*timed_out)
                spdlog::warn(
                    "cancel request to server {}:{} not delivered within {} ms (cancel_wait_timeout)", host,
                    port, budget.count());
        },
        net::LogIfThrown{"cancel request"});
}

void ServerConnection::close(const std::string& reason) {
    if (state_ == State::kClosed) return;
    state_ = State::kClosed;
    close_reason_ = reason;
    auto self = shared_from_this();
    if (client_) {
        auto* c = client_;
        client_ = nullptr;
        c->on_server_lost(
            pg::ErrorFields{"FATAL", sqlstate::kConnectionFailure, "server conn crashed?", reason, {}});
    }
    if (pool_) pool_->on_server_closing(self);
    std::error_code ignored;
    if (socket_.is_open() && relay_running_) {
        // The backend holds its slot until it has exited: say Terminate and keep counting this connection
        // against the pool's limits until the server closes its end (bounded by a short timer).
        std::string bye;
        pg::append_terminate(bye);
        net::send_now(socket_, bye);
        socket_.shutdown(asio::socket_base::shutdown_send, ignored);
        drain_timer_.expires_after(std::chrono::seconds(2));
        drain_timer_.async_wait([self](std::error_code ec) {
            if (!ec) {
                std::error_code ignored2;
                self->socket_.close(ignored2);
            }
        });
        return;  // the relay loop reads to EOF, then finalize()
    }
    finalize();
}

void ServerConnection::finalize() {
    if (finalized_) return;
    finalized_ = true;
    drain_timer_.cancel();
    std::error_code ignored;
    if (socket_.is_open()) {
        socket_.shutdown(asio::socket_base::shutdown_both, ignored);
        socket_.close(ignored);
    }
    if (pool_) pool_->on_server_closed(shared_from_this());
}

asio::awaitable<void> ServerConnection::relay_loop() {
    auto self = shared_from_this();
    relay_running_ = true;
    co_await relay();
    // Closed: drain until the server has closed its side (its backend is gone), then free the slot.
    char sink[512];
    while (socket_.is_open()) {
        auto [ec, n] = co_await socket_.async_read_some(asio::buffer(sink), net::use_nothrow);
        if (ec) break;
    }
    relay_running_ = false;
    finalize();
}

bool ServerConnection::has_unexpected_input() const {
    return !in_.empty() || net::has_pending_input(socket_);
}

void ServerConnection::fail_linked(const std::string& message, const char* state) {
    if (!client_) return;
    auto* c = client_;
    client_ = nullptr;
    c->on_server_lost(pg::ErrorFields{"FATAL", state, message, {}, {}});
}

void ServerConnection::on_ready_for_query(char status, bool internal) {
    tx_status_ = status;
    if (internal) {
        if (swallow_rfq_ > 0) --swallow_rfq_;
        if (pending_sets_rfq_ > 0 && --pending_sets_rfq_ == 0) {
            if (internal_errors_ == pending_sets_errors_)
                for (auto& [name, requested] : pending_sets_)
                    if (auto it = params_.find(name); it != params_.end())
                        equivalents_[name] = {std::move(requested), it->second};
            pending_sets_.clear();
        }
        return;
    }
    if (expected_rfq_ > 0) --expected_rfq_;
    const auto now = Clock::now();
    if (pool_) {
        auto& st = pool_->stats();
        ++st.query_count;
        st.query_time_us += std::chrono::duration_cast<std::chrono::microseconds>(now - busy_since_).count();
        if (status == 'I' && expected_rfq_ == 0) {
            ++st.xact_count;
            st.xact_time_us +=
                std::chrono::duration_cast<std::chrono::microseconds>(now - xact_since_).count();
        }
    }
    ready_since_ = now;
    if (expected_rfq_ > 0) busy_since_ = now;
}

asio::awaitable<void> ServerConnection::relay() {
    auto self = shared_from_this();
    while (state_ != State::kClosed) {
        // Parse what is buffered: a prefix of it goes to the linked client, then at most one dropped segment.
        while (!in_.empty() && state_ != State::kClosed) {
            const std::string_view v = in_.view();
            size_t forward = 0;  // bytes at the front of v that go to the client
            size_t drop = 0;     // bytes right after them that are swallowed
            bool release_check = false;
            bool need_more = false;
            size_t want_unread = 0;
            LinkedClient* target = client_;
            // A FATAL for the linked client (a restart's 57P01): the backend exits right after it, and its
            // EOF may come in the same readiness edge as the error, which a drained wait would never see
            // again. So the error ends the client and the server here, as PostgreSQL sent it (issue 15).
            std::optional<pg::ErrorFields> client_fatal;
            size_t client_fatal_len = 0;
            while (forward < v.size()) {
                auto seg = scanner_.next(v.substr(forward));
                if (seg.kind == pg::SegmentKind::kNeedMore) {
                    // Grow only after the bytes before it are written: growing moves the buffer under `v`.
                    want_unread = scanner_.needed(v.substr(forward));
                    need_more = true;
                    break;
                }
                if (seg.kind == pg::SegmentKind::kError) {
                    fail_linked(std::string("server sent a malformed message: ") + scanner_.error(),
                                sqlstate::kProtocolViolation);
                    close(std::string("protocol error from server: ") + scanner_.error());
                    co_return;
                }
                bool internal;
                if (seg.kind == pg::SegmentKind::kRest) {
                    internal = swallowing_current_;
                } else {
                    internal = swallow_rfq_ > 0;
                    swallowing_current_ = internal;
                    dropping_current_ = false;
                    if (!internal && track_responses_ && target != nullptr) {
                        const auto d = responses_.on_server_message(
                            seg.type, seg.type == 'C' ? seg.body() : std::string_view{}, *statements_,
                            target->client_statements());
                        if (d == pg::Disposition::kOutOfSync) {
                            fail_linked("server answered a request that was not made (prepared statements)",
                                        sqlstate::kProtocolViolation);
                            close("server response out of step with the client's requests");
                            co_return;
                        }
                        dropping_current_ = d == pg::Disposition::kDrop;
                    }
                }
                const bool to_client = !internal && target != nullptr && !dropping_current_;
                // After a message completes, poolguard's own answers that are now due go right behind it.
                bool inject = false;
                if (track_responses_ && !internal && target != nullptr && seg.completes) {
                    responses_.append_ready_fakes(fakes_);
                    inject = !fakes_.empty();
                }
                if (seg.kind == pg::SegmentKind::kWhole) {
                    const auto body = seg.body();
                    switch (seg.type) {
                        case 'Z':
                            on_ready_for_query(body.empty() ? 'I' : body[0], internal);
                            if (!internal) release_check = true;
                            break;
                        case 'S':
                            if (auto ps = pg::parse_parameter_status(body)) {
                                auto lower = lowercase(ps->first);
                                if (is_tracked_parameter(lower)) {
                                    auto& have = params_[lower];
                                    if (have != ps->second) {
                                        have = ps->second;
                                        synced_params_.reset();  // no longer known to match any client
                                    }
                                    if (to_client) target->on_server_parameter(lower, ps->second);
                                }
                            }
                            break;
                        case 'E': {
                            if (internal || !target) {
                                auto e = pg::parse_error_fields(body);
                                if (internal) {
                                    last_internal_error_ = e.sqlstate + " " + e.message;
                                    ++internal_errors_;
                                    spdlog::warn("server {} (pid {}): internal query failed: {} {}", id_,
                                                 backend_pid_, e.sqlstate, e.message);
                                }
                                if (e.severity == "FATAL" || e.severity == "PANIC") {
                                    close("server closed the connection: " + e.message);
                                    co_return;
                                }
                            } else if (to_client) {
                                auto e = pg::parse_error_fields(body);
                                if (e.severity == "FATAL" || e.severity == "PANIC") {
                                    client_fatal = std::move(e);
                                    client_fatal_len = seg.bytes.size();
                                }
                            }
                            break;
                        }
                        case 'G':
                            copy_in_ = true;
                            break;
                        default:
                            break;
                    }
                } else if (target == nullptr && !internal && seg.kind == pg::SegmentKind::kStart &&
                           seg.type != 'N' && seg.type != 'A') {
                    // Result data with nobody to receive it: the connection is out of step; never reuse it.
                    close(std::string("unexpected message '") + seg.type + "' from an idle server");
                    co_return;
                }
                if (client_fatal) break;  // written after the bytes before it (below)
                if (to_client) {
                    forward += seg.bytes.size();
                    if (release_check || inject) break;
                } else {
                    drop = seg.bytes.size();
                    break;
                }
            }
            if (forward > 0 || !fakes_.empty()) {
                // Liveness (issue 15): across each suspension below, `hold` keeps the client, its socket and
                // its gate alive; after each one, `client_ == target` says whether it is still ours. Taken
                // only when the relay suspends, so the usual write (gate free, room in the socket) costs no
                // reference count.
                std::shared_ptr<LinkedClient> hold;
                auto& gate = target->client_write_gate();
                bool gone = false;  // keep_alive() is null only inside the client's destructor
                if (gate.busy()) {
                    hold = target->keep_alive();
                    gone = !hold;
                    while (!gone && gate.busy())
                        co_await gate.wait();
                }
                if (gone || state_ == State::kClosed || client_ != target) {
                    // Unlinked while waiting for the gate: the client is gone; its bytes go nowhere.
                    fakes_.clear();
                    in_.consume(forward + drop);
                    continue;
                }
                gate.lock();
                std::array<asio::const_buffer, 2> bufs{asio::buffer(v.data(), forward), asio::buffer(fakes_)};
                // Straight to the kernel when the client's socket has room (the usual case); only the rest
                // waits in an asynchronous write.
                std::error_code ec;
                size_t n = net::send_available(target->client_socket(), bufs, ec);
                if (!ec && net::bytes_left(bufs) > 0) {
                    if (!hold) hold = target->keep_alive();
                    if (hold) {
                        auto [wec, wn] =
                            co_await asio::async_write(target->client_socket(), bufs, net::use_nothrow);
                        ec = wec;
                        n += wn;
                    } else {
                        ec = asio::error::operation_aborted;  // the client is being destroyed
                    }
                }
                fakes_.clear();
                if (client_ == target) gate.unlock();
                if (ec && ec != asio::error::operation_aborted && client_ == target) {
                    // The client is gone (reset, closed). Its session's own wait may never learn it: a
                    // drained wait (net::async_wait_drained) whose readiness edge came with the client's last
                    // bytes sees no new one, and the session held this server for good (clients reset right
                    // after a query, issue 15). Closing its socket ends that wait and the session tears down.
                    std::error_code ignored;
                    target->client_socket().close(ignored);
                }
                if (state_ == State::kClosed) co_return;
                if (!ec && client_ == target) {
                    target->on_bytes_to_client(n);
                    if (pool_) pool_->stats().bytes_sent += n;
                }
            }
            in_.consume(forward + drop);
            if (client_fatal && state_ != State::kClosed) {
                in_.consume(client_fatal_len);
                if (client_ == target && client_ != nullptr) {
                    auto* c = client_;
                    client_ = nullptr;
                    c->on_server_lost(*client_fatal);
                }
                close("server closed the connection: " + client_fatal->message);
                co_return;
            }
            if (want_unread > 0) in_.reserve_unread(want_unread);
            if (state_ == State::kCleanup && swallow_rfq_ == 0 && drop > 0) finish_cleanup();
            if (release_check && client_ != nullptr && client_ == target && pool_) pool_->maybe_release(self);
            if (need_more && forward == 0 && drop == 0) break;
        }
        if (state_ == State::kClosed) co_return;
        in_.shrink_if_idle(64 * 1024);
        std::error_code ec;
        size_t n = 0;
        // No drained wait (net::async_wait_drained) here (issue 15 fault tests): its precondition does not
        // hold for a server. The read that empties the socket runs in the handler, after the readiness event
        // that woke it; a FIN or RST arriving in between raises an event that the reactor consumes with no
        // read queued, and a drained wait never sees it. Backends that a crash restart or an immediate
        // shutdown of PostgreSQL ends right after a WARNING did exactly that: the server was never closed
        // and its client hung for good. asio's read makes a speculative recv first, which sees the EOF.
        char* p = in_.write_ptr(4096);
        auto [rec, rn] =
            co_await socket_.async_read_some(asio::buffer(p, in_.write_space()), net::use_nothrow);
        ec = rec;
        n = rn;
        if (ec) {
            // EOF or error seen here: the backend is gone. Close the socket now so relay_loop does not wait
            // for it again (after a short read asio waits for a new readiness edge, which EOF never gives,
            // so the pool slot stayed taken until the 2 s drain timer).
            if (state_ != State::kClosed)
                close(ec == asio::error::eof ? "server closed the connection"
                                             : "server read failed: " + ec.message());
            std::error_code ignored;
            socket_.close(ignored);
            co_return;
        }
        if (state_ == State::kClosed) co_return;
        if (n == 0) continue;
        in_.commit(n);
    }
}

}  // namespace poolguard::pool
