// Owns ClientSession's life after login: running and parking the session, binding a pooled server for
// each transaction, relaying the client's messages, timeouts and the pool's callbacks. The startup packet
// and authentication are in client_login.cpp.
#include "session/client_session.h"

#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "common/dataplane_counters.h"
#include "net/drained_wait.h"
#include "net/fast_write.h"
#include "protocol/pg/scram.h"
#include "protocol/pg/wire.h"
#include "session/proxy.h"
#include "session/session_helpers.h"

namespace poolguard::session {

namespace pg = protocol::pg;
using detail::fatal;
using detail::tracked;

namespace {
// Parse/Bind/Describe/Close must arrive whole when prepared statements are tracked (large Binds included).
constexpr uint32_t kMaxWholeClientMessage = 256u << 20;
// A first message this large is not buffered whole before a server is bound: it streams through.
constexpr size_t kStreamWithoutWaitFrom = 1u << 20;
// Session parameters poolguard keeps per client and re-applies on whichever server it gets.
constexpr const auto& kTracked = kTrackedParams;

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
}  // namespace

ClientSession::ClientSession(Proxy& proxy, net::Socket socket, uint64_t id)
    : proxy_(proxy),
      socket_(std::move(socket)),
      id_(id),
      in_(8 * 1024),
      scanner_(static_cast<uint32_t>(std::max(proxy.config().max_packet_size, 5)), kMaxWholeClientMessage),
      connected_at_(std::chrono::steady_clock::now()) {
    peer_ = net::peer_address(socket_.socket(), &peer_port_);
    proxy_.register_client(this, cancel_pid_, cancel_key_);
    registered_ = true;
}

// Every exit path ends here: a session that did not get to finish() (an exception escaping run(), its
// frames destroyed) leaves the registry and its server, which would otherwise keep pointers to freed memory.
ClientSession::~ClientSession() {
    if (server_ && server_->linked_client() == this) server_->unlink();
    if (!registered_) return;  // finished, or the Proxy (and its pools) went first
    if (server_ && pool_) pool_->release(server_, true);
    server_ = nullptr;
    proxy_.unregister_client(this);
}

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

asio::awaitable<void> ClientSession::close_after_forwarding(pool::ServerPtr server,
                                                            std::string_view forwarded,
                                                            protocol::pg::ErrorFields error,
                                                            std::string reason) {
    if (!forwarded.empty())
        co_await asio::async_write(server->socket(), asio::buffer(forwarded.data(), forwarded.size()),
                                   net::use_nothrow);
    in_.consume(forwarded.size());
    if (server_) {
        auto s = server_;
        server_ = nullptr;
        pool_->release(s, true);
    }
    queue_error(error);
    co_await flush_client_out();
    close_reason_ = std::move(reason);
}

asio::awaitable<void> ClientSession::flush_client_out() {
    if (client_out_.empty()) co_return;
    co_await asio::async_write(socket_, asio::buffer(client_out_), net::use_nothrow);
    client_out_.clear();  // on a write error the client is gone; nothing more to tell it
}

asio::awaitable<void> ClientSession::run() {
    auto self = shared_from_this();
    auto st = co_await read_startup();
    if (st) {
        logged_in_ = true;
        if (proxy_.config().log_connections)
            spdlog::info("C-{}: {}/{}@{}:{} login attempt: db={} user={} application_name={}", id_, database_,
                         user_, peer_, peer_port_, database_, user_, application_name());
        if (admin_) {
            co_await admin_loop();
        } else {
            // Nothing sent yet: park at once instead of after the janitor's second. The login's frames
            // are freed now and the next login reuses them; left until the janitor's pass they end up as
            // holes between long-lived sessions (10,000 idle logins: 2.08 KB per client, most of it holes).
            if (in_.empty() && !server_ && !net::has_pending_input(socket_)) {
                parked_exit_ = true;
                if (park_if_requested()) co_return;
            }
            co_await relay();
        }
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
    in_.shrink_if_idle(0);  // a parked client holds no read buffer (the next read allocates one)
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
    if (registered_) {
        registered_ = false;
        proxy_.unregister_client(this);
    }
    client_slot_.release();
    if (logged_in_ && proxy_.config().log_disconnections) {
        const auto secs =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - connected_at_).count();
        spdlog::info("C-{}: {}/{}@{}:{} closing because: {} (age={:.0f}s)", id_, database_, user_, peer_,
                     peer_port_, close_reason_.empty() ? "client closed the connection" : close_reason_,
                     secs);
    }
}

void ClientSession::kill(const std::string& reason) {
    end_session(ErrorKind::kAdminKill, reason);
}

void ClientSession::end_session(ErrorKind kind, const std::string& reason) {
    if (server_) {
        auto s = server_;
        server_ = nullptr;
        s->unlink();
        if (pool_) pool_->release(s, true);
    }
    terminate_with(fatal(kind, reason));
}

void ClientSession::queue_parameter_sync(pool::ServerConnection& server) {
    if (!param_set_) param_set_ = intern_parameter_set(vars_);
    if (server.synced_params() == param_set_) return;  // this server already has exactly these values
    std::string sql;
    std::vector<std::pair<std::string, std::string>> sets;  // only built when a SET is needed
    const auto& have = server.parameters();
    for (size_t i = 0; i < kTrackedCount; ++i) {
        const auto& t = kTracked[i];
        const std::string* want = vars_.at(i);
        if (!want) continue;
        // No std::string built per lookup: this runs per transaction.
        auto it = have.find(std::string_view(t.lower));
        if (it != have.end() &&
            (it->second == *want || server.equivalent_parameter(t.lower, *want, it->second)))
            continue;
        sql += "SET ";
        sql += t.canonical;
        sql += " = ";
        sql += pg::quote_literal(*want);
        sql += ";";
        sets.emplace_back(t.lower, *want);
    }
    if (!sql.empty()) {
        // Marked synced only once the server reports the new values and a later comparison finds them
        // equal: a failed SET must never let the next client skip its own.
        server.queue_internal_query(sql);
        server.note_parameter_sets(std::move(sets));
        return;
    }
    server.set_synced_params(param_set_);
}

void ClientSession::begin_wait() {
    waiting_ = true;
    wait_notified_ = false;
    wait_started_ = std::chrono::steady_clock::now();
}

Status ClientSession::end_wait(Result<pool::ServerPtr> server) {
    waiting_ = false;
    const auto waited_us = std::chrono::duration_cast<std::chrono::microseconds>(
                               std::chrono::steady_clock::now() - wait_started_)
                               .count();
    pool_->stats().wait_time_us += waited_us;
    dataplane_counters().observe_wait(static_cast<uint64_t>(waited_us));  // control plane (issue 5)
    if (!server && server.error().message == pool::kWaiterHungUp) {
        close_reason_ = pool::kWaiterHungUp;  // nobody to tell, and not a refusal
        return fail(pool::kWaiterHungUp);
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
        queue_error(fatal(e.sqlstate.empty() ? sqlstate::kConnectionFailure : e.sqlstate, e.message));
        return fail(e.message);  // the caller flushes the queued error to the client
    }
    if (closing_ || !socket_.is_open()) {
        pool_->release(*server, true);
        return fail("client closed the connection while waiting");
    }
    if ((*server)->closed()) {
        // Liveness (issue 15): the server handed over died between the hand-off and this resumption (a
        // database restart's FATAL arrived while it was on its way, nobody linked to hear it). Nothing was
        // sent to it yet: drop it; server_ stays empty and the caller waits for another.
        pool_->release(*server, false);
        return Status{};
    }
    attach_server(std::move(*server));
    return Status{};
}

void ClientSession::attach_server(pool::ServerPtr server) {
    server_ = std::move(server);
    server_->link(this);
    if (track_statements_)
        server_->enable_statement_tracking(static_cast<size_t>(proxy_.config().max_prepared_statements));
    else
        server_->disable_statement_tracking();
    server_->set_linked_client_id(id_);
    if (pool_) ++pool_->stats().server_assignment_count;
    request_time_ = std::chrono::system_clock::now();
    bound_at_ = std::chrono::steady_clock::now();  // control plane (issue 5): transaction start
    if (replication_ == Replication::kNone) queue_parameter_sync(*server_);  // replication: in the startup
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
                reading_ = true;
                std::error_code wec;
                if (drained && net::can_wait_drained(socket_)) {
                    in_drained_wait_ = true;
                    auto [e] = co_await net::async_wait_drained(socket_, net::use_nothrow);
                    wec = e;
                } else {
                    auto [e] = co_await socket_.async_wait(asio::socket_base::wait_read, net::use_nothrow);
                    wec = e;
                }
                drained = false;
                awaiting_input_ = false;
                reading_ = false;
                in_drained_wait_ = false;
                const bool park = park_requested_;
                park_requested_ = false;
                const bool rearm = rearm_requested_;
                rearm_requested_ = false;
                if (wec) {
                    // The janitor found input (bytes, EOF or a reset) the drained wait missed: asio's
                    // async_wait re-arms the descriptor, which reports it at once.
                    if (rearm && !park && wec == asio::error::operation_aborted && !closing_ &&
                        socket_.is_open())
                        continue;
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
                int err = 0;
                const ssize_t n = socket_.read_nonblocking(p, space, err);
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
            // A server is bound only for complete work (issue 15): a client that stops in the middle of its
            // first message holds none (partial_message_timeout ends it). Large messages stream through.
            const auto first = pg::first_message_ready(v, kStreamWithoutWaitFrom);
            if (!first.ready) {
                in_.reserve_unread(first.need);
                continue;
            }
            while (!server_) {
                if (auto idle = pool_->try_acquire_idle(pool_class_)) {
                    // No wait, no coroutine: `drained` still holds, the next wait needs no system call.
                    dataplane_counters().observe_wait(0);
                    attach_server(std::move(idle));
                } else {
                    // Queued for a server: the wait lives in this frame (no coroutine per wait) and lets the
                    // reactor run.
                    drained = false;
                    begin_wait();
                    pool::Pool::Waiter waiter;
                    auto got = pool_->start_wait(pool_class_, this, waiter);
                    if (!got) {
                        co_await pool::Pool::async_wait_for(waiter, asio::use_awaitable);
                        got = pool::Pool::finish_wait(waiter);
                    }
                    auto st = end_wait(std::move(*got));
                    if (!st) {
                        co_await flush_client_out();  // the refusal end_wait queued, if any
                        close_reason_ = st.error().message;
                        co_return;
                    }
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
            if (seg.kind != pg::SegmentKind::kRest && seg.type == 'Q' && proxy_.config().disable_pqexec) {
                // disable_pqexec: the simple query protocol (several statements in one message, the usual
                // vehicle of SQL injection) is refused, as PgBouncer does: the client is closed.
                co_await close_after_forwarding(server, v.substr(0, forward),
                                                fatal(ErrorKind::kProtocolViolation, "PQexec disallowed"),
                                                "PQexec disallowed (disable_pqexec)");
                co_return;
            }
            if (seg.kind == pg::SegmentKind::kError ||
                (seg.kind != pg::SegmentKind::kRest && !valid_frontend_type(seg.type))) {
                std::string why = seg.kind == pg::SegmentKind::kError
                                      ? std::string(scanner_.error())
                                      : std::string("invalid frontend message type ") +
                                            std::to_string(static_cast<unsigned char>(seg.type));
                co_await close_after_forwarding(
                    server, v.substr(0, forward),
                    fatal(ErrorKind::kProtocolViolation, "protocol violation: " + why),
                    "protocol violation: " + why);
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
                    const pg::PreparedStats before = rewriter_.stats();
                    auto st =
                        rewriter_.on_client_message(seg.type, seg.body(), statements_, server->statements(),
                                                    server->responses(), to_server_);
                    if (pool_) {  // SHOW STATS' prepared-statement counters
                        const pg::PreparedStats& after = rewriter_.stats();
                        auto& ps = pool_->stats();
                        ps.client_parse_count += after.client_parses - before.client_parses;
                        ps.server_parse_count += after.server_parses - before.server_parses;
                        ps.bind_count += after.binds - before.binds;
                    }
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
            end_session(ErrorKind::kProtocolViolation, "protocol violation: " + rewrite_error);
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
    // The drained wait waits for a new readiness edge. Input whose edge was consumed before relay() read
    // what came with it (a reset right behind a client's last bytes, as in a client killed mid COPY FROM
    // STDIN) never raises another one, and the session would hold its server for good. After a second in
    // the same drained wait, one non-blocking peek: anything waiting means the wait missed it.
    if (in_drained_wait_ && reads_ == reads_at_last_check_ && !park_requested_) {
        if (++drained_checks_ >= kParkAfterChecks) {
            drained_checks_ = 0;
            if (net::has_pending_input(socket_.socket())) {
                rearm_requested_ = true;
                std::error_code ignored;
                socket_.cancel(ignored);
            }
        }
    } else {
        drained_checks_ = 0;
    }
    const auto& cfg = proxy_.config();
    // Stopped in the middle of a message (issue 15): relay() waits for the rest and nothing came.
    const bool mid_message = reading_ && !waiting_ && (!in_.empty() || !scanner_.at_boundary());
    if (!mid_message || reads_ != reads_at_last_check_) {
        last_progress_ = now;
    } else if (cfg.partial_message_timeout.count() > 0 &&
               now - last_progress_ > cfg.partial_message_timeout) {
        reads_at_last_check_ = reads_;
        end_session(ErrorKind::kClientStalled,
                    "client stopped in the middle of a message (partial_message_timeout)");
        return;
    }
    reads_at_last_check_ = reads_;
    // Per user ([users]) values live in the pool's settings; admin sessions have no pool.
    const auto query_timeout = pool_ ? pool_->settings().query_timeout : cfg.query_timeout;
    const auto idle_transaction_timeout =
        pool_ ? pool_->settings().idle_transaction_timeout : cfg.idle_transaction_timeout;
    const auto client_idle_timeout = pool_ ? pool_->settings().client_idle_timeout : cfg.client_idle_timeout;
    if (server_) {
        auto s = server_;
        if (pool_ && check_transaction_timeout(now)) return;
        if (query_timeout.count() > 0 && s->busy_for_client() && now - s->busy_since() > query_timeout) {
            // The query is cancelled on the server and the connection closed: its state is unknown.
            server_ = nullptr;
            s->unlink();
            s->send_cancel();
            s->close("query_timeout");
            terminate_with(fatal(ErrorKind::kQueryTimeout, "query_timeout"));
            return;
        }
        if (idle_transaction_timeout.count() > 0 && s->tx_status() != 'I' && !s->busy_for_client() &&
            now - s->ready_since() > idle_transaction_timeout) {
            server_ = nullptr;
            s->unlink();
            pool_->release(s, true);  // rolls the transaction back before anyone else gets the server
            terminate_with(fatal(ErrorKind::kIdleTransactionTimeout, "idle transaction timeout"));
            return;
        }
        return;
    }
    // The admin console is exempt, as in PgBouncer 1.25.2 (an operator's console stays open).
    if (!admin_ && !waiting_ && client_idle_timeout.count() > 0 && now - idle_since_ > client_idle_timeout)
        terminate_with(fatal(ErrorKind::kClientIdleTimeout, "client_idle_timeout"));
    if (waiting_ && !wait_notified_ && cfg.query_wait_notify.count() > 0 &&
        now - wait_started_ >= cfg.query_wait_notify) {
        // Tell the waiting client (psql shows it at once) why nothing happens yet; nothing else writes to
        // the client while it waits for a server.
        wait_notified_ = true;
        std::string out;
        // PgBouncer 1.23+'s text, which scripts and tests look for.
        pg::append_notice(out, "No server connection available in postgres backend, client being queued");
        if (write_gate_.busy()) {
            wait_notified_ = false;  // try again at the next tick
        } else if (!net::send_now(socket_, out)) {
            // A client that does not even read its socket; a partial message would corrupt the stream.
            close_reason_ = "could not send the query_wait_notify NOTICE";
            close_socket();
        }
    }
}

bool ClientSession::check_transaction_timeout(std::chrono::steady_clock::time_point now) {
    // transaction_timeout (PgBouncer 1.23+): a client inside a transaction for longer is closed, counted from
    // the transaction's first statement, whether a query is running or not; a single autocommit statement
    // is a transaction too (as PgBouncer 1.25.2 counts it).
    const auto limit = pool_->settings().transaction_timeout;
    const auto s = server_;
    if (limit.count() <= 0 || (s->tx_status() == 'I' && !s->busy_for_client()) ||
        now - s->xact_since() <= limit)
        return false;
    server_ = nullptr;
    s->unlink();
    if (s->busy_for_client()) {
        // A query is running: cancelled, and the connection closed (its state is unknown).
        s->send_cancel();
        s->close("transaction_timeout");
    } else {
        pool_->release(s, true);  // rolls the transaction back before anyone else gets the server
    }
    terminate_with(fatal(ErrorKind::kTransactionTimeout, "transaction timeout"));
    return true;
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
    if (!tracked(name, proxy_.config())) return;
    const std::string* have = vars_.find(name);
    if (have && *have == value) return;
    vars_.set(name, value);
    param_set_.reset();
}

void ClientSession::on_server_released() {
    server_ = nullptr;
    idle_since_ = std::chrono::steady_clock::now();
    if (proxy_.closing_clients()) {
        std::string out;
        pg::append_error(out, fatal(ErrorKind::kShutdown, "poolguard is shutting down"));
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
    pg::append_error(out, fatal(ErrorKind::kShutdown, "poolguard is shutting down"));
    net::send_now(socket_, out);
    close_reason_ = "poolguard is shutting down";
    close_socket();
    return true;
}

void ClientSession::cancel_running_query() {
    if (server_) server_->send_cancel();
}

}  // namespace poolguard::session
