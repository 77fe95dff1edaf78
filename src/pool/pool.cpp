// Owns Pool: the server connections of one (database, user) pair, the FIFO of clients waiting for one,
// and the limits that decide when another connection may be opened.
#include "pool/pool.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>

#include <algorithm>

#include "common/dataplane_counters.h"
#include "pool/outage.h"
#include "pool/pool_manager.h"

namespace poolguard::pool {

Pool::Pool(PoolManager& manager, asio::any_io_executor executor, std::string database, std::string user,
           PoolSettings settings)
    : manager_(manager),
      executor_(std::move(executor)),
      database_(std::move(database)),
      user_(std::move(user)),
      settings_(std::move(settings)),
      wait_timer_(executor_),
      retry_timer_(executor_),
      breaker_(&manager_.breaker(database_)) {
    configure_classes();
    configure_adaptive(false);
}

Pool::~Pool() {
    *alive_ = false;
    // Waiting clients learn that the pool is gone (their coroutines check alive_ before touching it).
    waiters_.erase_if([](Waiter* w) {
        w->queued = false;
        wake(w);
        return true;
    });
    for (auto& [id, s] : servers_)
        s->detach_pool();
}

PoolCounters Pool::counters() const {
    PoolCounters c;
    for (const auto& [id, s] : servers_) {
        switch (s->state()) {
            case ServerConnection::State::kIdle:
                ++c.idle;
                break;
            case ServerConnection::State::kActive:
                ++c.active;
                break;
            case ServerConnection::State::kConnecting:
                ++c.connecting;
                break;
            case ServerConnection::State::kCleanup:
                if (s->testing())
                    ++c.tested;
                else
                    ++c.cleanup;
                break;
            case ServerConnection::State::kClosed:
                break;
        }
    }
    c.waiting = static_cast<int>(waiters_.size());
    c.served = served_;
    c.wait_timeouts = wait_timeouts_;
    c.login_failures = login_failures_;
    return c;
}

ServerPtr Pool::take_idle() {
    while (!idle_.empty()) {
        ServerPtr s;
        if (manager_.config().server_round_robin) {
            s = idle_.front();
            idle_.pop_front();
        } else {
            s = idle_.back();
            idle_.pop_back();
        }
        // A backend terminated while idle has its FATAL/EOF waiting in the socket: never hand that out.
        if (s->has_unexpected_input()) {
            s->close("server connection closed or sent data while idle");
            continue;
        }
        s->set_state(ServerConnection::State::kActive);
        ++served_;
        return s;
    }
    return nullptr;
}

void Pool::resume() {
    paused_ = false;
    serve_from_idle();
    open_for_waiters();
}

void Pool::serve_from_idle() {
    if (paused_) return;
    while (!idle_.empty() && waiters_.has_eligible()) {
        auto s = take_idle();
        if (!s) break;
        Waiter* w = pop_waiter_front();
        --served_;  // take_idle and hand_to_waiter both count
        hand_to_waiter(w, s);
    }
}

std::chrono::microseconds Pool::max_wait() const {
    auto oldest = Clock::time_point::max();
    waiters_.for_each_front([&](int, const Waiter* w) { oldest = std::min(oldest, w->since); });
    if (oldest == Clock::time_point::max()) return std::chrono::microseconds(0);
    return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - oldest);
}

std::vector<ClassStat> Pool::class_stats() const {
    std::vector<ClassStat> out;
    out.reserve(settings_.classes.size());
    const auto now = Clock::now();
    for (size_t i = 0; i < settings_.classes.size(); ++i) {
        const auto& def = settings_.classes[i];
        const int cls = static_cast<int>(i);
        out.push_back(ClassStat{def.name, def.priority, def.max_share, waiters_.cap(cls), waiters_.held(cls),
                                static_cast<int>(waiters_.waiting(cls)), std::chrono::microseconds(0)});
    }
    waiters_.for_each_front([&](int cls, const Waiter* w) {
        if (cls < static_cast<int>(out.size()))
            out[cls].max_wait = std::chrono::duration_cast<std::chrono::microseconds>(now - w->since);
    });
    return out;
}

void Pool::configure_classes() {
    std::vector<int> priorities, caps;
    for (const auto& c : settings_.classes) {
        priorities.push_back(c.priority);
        caps.push_back(class_cap(c.max_share, settings_.pool_size));
    }
    waiters_.configure(priorities, caps);
}

void Pool::hold(const ServerPtr& server, int cls) {
    if (server->held_class >= 0) {
        waiters_.unhold(server->held_class);
    } else {
        ++in_use_;
        peak_in_use_ = std::max(peak_in_use_, in_use_);
    }
    server->held_class = waiters_.clamp(cls);
    waiters_.hold(server->held_class);
}

void Pool::unhold(const ServerPtr& server) {
    if (server->held_class < 0) return;
    const int cls = server->held_class;
    server->held_class = -1;
    --in_use_;
    waiters_.unhold(cls);
    // The class may have waiters that its cap held back while servers sat idle.
    if (waiters_.waiting(cls) > 0) serve_from_idle();
}

Error Pool::breaker_error() const {
    Error e;
    if (breaker_->opened_by_login_failures()) {
        // Logins fail for another reason than a full database (auth, network): say so, with the server's
        // code.
        e.message = "database \"" + database_ + "\" is unavailable: circuit breaker open (" +
                    breaker_->reason() + "); retry later";
        e.sqlstate = last_login_error_ && !last_login_error_->sqlstate.empty() ? last_login_error_->sqlstate
                                                                               : sqlstate::kConnectionFailure;
        return e;
    }
    e.message = "database \"" + database_ + "\" is exhausted: circuit breaker open (" + breaker_->reason() +
                "); retry later";
    e.sqlstate = sqlstate::kTooManyConnections;
    return e;
}

void Pool::fail_waiters_fast(const Error& error) {
    while (waiters_.size() > static_cast<size_t>(connecting_)) {
        Waiter* w = pop_waiter_back();
        w->error = error;
        wake(w);
        dataplane_counters().refused_breaker++;
    }
}

void Pool::breaker_tick() {
    const auto now = Clock::now();
    if (!breaker_->settings().enabled) return;
    if (paused_) return;  // PAUSE makes clients wait on purpose
    // Only waits of classes without a max_share count. A capped class queues by design, and its clients'
    // waits mostly measure its cap: in bench/incident 100 batch clients share 25 servers and routinely wait
    // 10 s. In one run a few-second stall let web take most of the pool, batch fell below its cap, its
    // oldest waiter (10.3 s, most of it spent at the cap) opened the breaker, and web was refused for 5 s.
    auto oldest = Clock::time_point::max();
    waiters_.for_each_front([&](int cls, const Waiter* w) {
        if (waiters_.cap(cls) == INT_MAX) oldest = std::min(oldest, w->since);
    });
    const auto waited = oldest == Clock::time_point::max()
                            ? std::chrono::microseconds(0)
                            : std::chrono::duration_cast<std::chrono::microseconds>(now - oldest);
    if (waited.count() > 0) {
        const bool was_open = breaker_->state() == BreakerState::kOpen;
        breaker_->on_wait(now, waited);
        if (!was_open && breaker_->state() == BreakerState::kOpen) {
            spdlog::warn("{}: circuit breaker open: {}", database_, breaker_->reason());
            dataplane_counters().breaker_opens++;
        }
    }
    if (breaker_->state() == BreakerState::kOpen) fail_waiters_fast(breaker_error());
    // Half-open: one login probes whether the database takes connections again.
    if (breaker_->probe_due(now) && !probe_in_flight_ && can_open(true)) {
        breaker_->probe_started();
        probe_in_flight_ = true;
        spdlog::info("{}/{}: circuit breaker half-open: probing with one server login", database_, user_);
        open_one();
    }
}

void Pool::reconnect_all() {
    for (auto& [id, s] : servers_)
        s->mark_close_needed();
    while (!idle_.empty()) {
        auto s = idle_.front();
        idle_.pop_front();
        s->close("RECONNECT");
    }
    if (settings_.server_fast_close && settings_.mode == config::PoolMode::kSession) {
        // Sessions between transactions go now; those in one at its end (maybe_release).
        std::vector<ServerPtr> between;
        for (auto& [id, s] : servers_)
            if (s->state() == ServerConnection::State::kActive && s->linked_client() && s->at_release_point())
                between.push_back(s);
        for (const auto& s : between)
            fast_close(s);
    }
}

void Pool::fast_close(const ServerPtr& server) {
    LinkedClient* client = server->linked_client();
    server->unlink();
    if (client)
        client->on_server_lost(protocol::pg::ErrorFields{
            "FATAL",
            sqlstate::kProtocolViolation,
            "server connection closed: database configuration changed (server_fast_close)",
            {},
            {}});
    release(server, false);  // close-needed: put_back closes it
}

ServerPtr Pool::try_acquire_idle(int cls) {
    cls = waiters_.clamp(cls);
    if (paused_ || waiters_.at_cap(cls) || waiters_.has_eligible()) return nullptr;
    auto s = take_idle();
    if (!s) return nullptr;
    hold(s, cls);
    // Half-open and a client is served at once: the database works again.
    if (breaker_->state() == BreakerState::kHalfOpen) breaker_->on_served(Clock::now(), {});
    return s;
}

asio::awaitable<Result<ServerPtr>> Pool::acquire(int cls, LinkedClient* client) {
    Waiter waiter;
    auto now = start_wait(cls, client, waiter);
    if (now) co_return std::move(*now);
    co_await async_wait_for(waiter, asio::use_awaitable);
    co_return finish_wait(waiter);
}

std::optional<Result<ServerPtr>> Pool::start_wait(int cls, LinkedClient* client, Waiter& waiter) {
    cls = waiters_.clamp(cls);
    if (auto s = try_acquire_idle(cls)) return Result<ServerPtr>(std::move(s));
    if (servers_.empty() && last_login_error_ && Clock::now() < login_blocked_until_) {
        // Logins keep failing: tell the client the server's own reason now instead of making it wait.
        return Result<ServerPtr>(std::unexpected(*last_login_error_));
    }
    if (!breaker_->allows_wait(Clock::now())) {
        // The database is exhausted: fail within a second rather than queue for query_wait_timeout.
        dataplane_counters().refused_breaker++;
        return Result<ServerPtr>(std::unexpected(breaker_error()));
    }
    waiter.pool = this;
    waiter.alive = alive_;
    waiter.cls = cls;
    waiter.client = client;
    if (settings_.query_wait_timeout.count() > 0)
        waiter.deadline = waiter.since + settings_.query_wait_timeout;
    waiter.pos = waiters_.push(cls, &waiter);
    waiter.queued = true;
    arm_wait_timer(waiter.deadline);
    open_for_waiters();
    if (waiter.server || waiter.error) return finish_wait(waiter);
    return std::nullopt;
}

Result<ServerPtr> Pool::finish_wait(Waiter& waiter) {
    if (!waiter.alive || !*waiter.alive) return fail("pool was removed", sqlstate::kAdminShutdown);
    Pool& pool = *waiter.pool;
    if (waiter.queued) {
        pool.waiters_.erase(waiter.cls, waiter.pos);
        waiter.queued = false;
    }
    if (waiter.server) {
        const auto now = Clock::now();
        pool.breaker_->on_served(now,
                                 std::chrono::duration_cast<std::chrono::microseconds>(now - waiter.since));
        return waiter.server;
    }
    if (waiter.error) return std::unexpected(*waiter.error);
    if (!waiter.timed_out) return fail("woken without a server", sqlstate::kConnectionFailure);
    ++pool.wait_timeouts_;
    return fail("query_wait_timeout", sqlstate::kTooManyConnections);
}

void Pool::wake(Waiter* waiter) {
    if (!waiter->resume) return;
    auto resume = std::move(waiter->resume);
    waiter->resume = nullptr;
    resume();
}

void Pool::arm_wait_timer(Clock::time_point deadline) {
    if (deadline == Clock::time_point::max()) return;
    if (wait_timer_armed_ && deadline >= wait_timer_expiry_) return;  // the usual case: a later deadline
    // Re-arming cancels the pending wait; its handler sees a stale generation and does nothing.
    const uint64_t generation = ++wait_timer_generation_;
    wait_timer_armed_ = true;
    wait_timer_expiry_ = deadline;
    wait_timer_.expires_at(deadline);
    wait_timer_.async_wait([this, alive = alive_, generation](std::error_code) {
        if (!*alive || generation != wait_timer_generation_) return;
        wait_timer_armed_ = false;
        on_wait_timer();
    });
}

void Pool::on_wait_timer() {
    // Runs about once per query_wait_timeout, so scans of the waiters are fine here. With priority classes
    // the lowest priority is refused first: a waiter whose time is up while lower-priority waiters are
    // queued waits one more query_wait_timeout (once), and the newest of the lowest priority is refused in
    // its place.
    const auto now = Clock::now();
    const auto refused = waiters_.take_timed_out([&](Waiter* w) { return w->deadline <= now; },
                                                 [&](Waiter* w) {
                                                     if (w->extended) return false;
                                                     w->extended = true;
                                                     w->deadline = now + settings_.query_wait_timeout;
                                                     return true;
                                                 });
    for (Waiter* w : refused) {
        w->queued = false;
        w->timed_out = true;
        wake(w);
    }
    auto earliest = Clock::time_point::max();
    waiters_.erase_if([&](Waiter* w) {
        earliest = std::min(earliest, w->deadline);
        return false;
    });
    arm_wait_timer(earliest);
}

namespace {

// True when the client will never read an answer: it closed its connection (recv peeks end of file), the
// socket failed, or the next bytes it sent are a Terminate message. Pending other bytes (a pipelining
// client) or nothing at all: false. One non-blocking recv(MSG_PEEK).
bool client_hung_up(net::Stream& socket) {
    if (!socket.is_open()) return true;
    if (socket.is_tls()) {
        // Encrypted bytes say nothing about a Terminate; only end of file or an error count.
        unsigned char byte;
        const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    unsigned char peek[5];
    const ssize_t n = ::recv(socket.native_handle(), peek, sizeof peek, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
    return peek[0] == 'X';  // Terminate ('X', length 4): libpq's PQfinish, most drivers' close
}

}  // namespace

void Pool::drop_hung_up_waiters(Clock::time_point now) {
    constexpr auto kCheckAfter = std::chrono::seconds(1);  // a short wait is not worth a syscall
    waiters_.erase_if([&](Waiter* w) {
        if (!w->client || now - w->since < kCheckAfter || now < w->next_hangup_check) return false;
        w->next_hangup_check = now + kCheckAfter;
        if (!client_hung_up(w->client->client_socket())) return false;
        w->queued = false;
        w->error = Error::make(kWaiterHungUp);
        wake(w);
        return true;
    });
}

Pool::Waiter* Pool::pop_waiter_front() {
    Waiter* w = waiters_.pop_next();
    if (w) w->queued = false;
    return w;
}

Pool::Waiter* Pool::pop_waiter_back() {
    Waiter* w = waiters_.pop_lowest();
    if (w) w->queued = false;
    return w;
}

void Pool::hand_to_waiter(Waiter* waiter, const ServerPtr& server) {
    waiter->server = server;
    hold(server, waiter->cls);
    server->set_state(ServerConnection::State::kActive);
    ++served_;
    wake(waiter);
}

bool Pool::over_capacity() const {
    return static_cast<int>(servers_.size()) > settings_.pool_size + settings_.reserve_pool_size;
}

void Pool::put_back(const ServerPtr& server) {
    if (server->closed()) return;
    server->unlink();
    server->touch();
    if (manager_.shutting_down() && waiters_.empty()) {
        server->close("poolguard is shutting down");
        return;
    }
    const auto age = Clock::now() - server->created_at();
    const bool too_old = settings_.server_lifetime.count() > 0 && age > settings_.server_lifetime;
    if (server->close_needed()) {
        server->close("RECONNECT");
        return;
    }
    // The adaptive limit came down: this one goes rather than serving the next waiter.
    if (settings_.adaptive && open_servers() > adaptive_size_) {
        server->close("adaptive pool limit lowered");
        return;
    }
    if (waiters_.has_eligible() && !too_old && !paused_) {
        hand_to_waiter(pop_waiter_front(), server);
        return;
    }
    if (too_old || over_capacity() || static_cast<int>(servers_.size()) > settings_.pool_size) {
        server->close(too_old ? "server_lifetime reached" : "pool size reduced");
        return;
    }
    server->set_state(ServerConnection::State::kIdle);
    idle_.push_back(server);
}

void Pool::maybe_release(const ServerPtr& server) {
    LinkedClient* client = server->linked_client();
    if (!client) return;
    const bool shutdown = manager_.shutting_down();
    if (settings_.mode == config::PoolMode::kSession && !shutdown) {
        if (settings_.server_fast_close && server->close_needed() && server->at_release_point())
            fast_close(server);
        return;
    }
    if (server->at_release_point()) {
        server->unlink();
        client->on_server_released();
        release(server, false);
        return;
    }
    if (settings_.mode == config::PoolMode::kStatement && server->tx_status() != 'I' &&
        !server->busy_for_client()) {
        server->unlink();
        client->on_protocol_refusal(protocol::pg::ErrorFields{
            "ERROR",
            sqlstate::kFeatureNotSupported,
            "transaction blocks not allowed in statement pooling mode",
            {},
            "use pool_mode = transaction for this database, or run the statements without BEGIN"});
        release(server, true);
    }
}

void Pool::release(const ServerPtr& server, bool client_gone) {
    server->unlink();
    unhold(server);
    if (server->closed()) return;
    if (client_gone && settings_.replication) {
        server->close("replication client disconnected");
        return;
    }
    if (client_gone && server->busy_for_client()) {
        // A query is still running (or a COPY or a half-sent message): the stream cannot be resumed cleanly.
        server->send_cancel();
        server->close("client disconnected while its query was running");
        return;
    }
    const bool reset = (settings_.mode == config::PoolMode::kSession || settings_.reset_always) &&
                       !settings_.reset_query.empty();
    if (server->tx_status() != 'I' || reset) {
        server->begin_cleanup(reset, settings_.reset_query);
        return;
    }
    put_back(server);
}

void Pool::on_server_closing(const ServerPtr& server) {
    std::erase(idle_, server);
    if (servers_.contains(server->id())) closing_.insert(server->id());
}

void Pool::on_server_closed(const ServerPtr& server) {
    std::erase(idle_, server);
    unhold(server);
    closing_.erase(server->id());
    if (servers_.erase(server->id()) == 0) return;
    spdlog::info("S-{}: {}/{} closing server connection (pid {}): {}", server->id(), database_, user_,
                 server->backend_pid(), server->close_reason());
    manager_.on_slot_freed(database_, settings_.target.user);
}

bool Pool::can_open(bool allow_reserve) {
    if (Clock::now() < login_blocked_until_) return false;
    // An adaptive pool has no reserve: the limiter (within the budget) is the whole limit.
    const int limit = settings_.adaptive
                          ? adaptive_size_
                          : settings_.pool_size + (allow_reserve ? settings_.reserve_pool_size : 0);
    if (static_cast<int>(servers_.size()) >= limit) return false;
    // At a database/user-wide limit: start closing an idle server of another pool; the slot counts as
    // free only once that backend has exited (on_slot_freed then opens ours).
    if (settings_.max_db_connections > 0 &&
        manager_.database_server_count(database_) >= settings_.max_db_connections) {
        manager_.evict_idle_for(*this, true);
        return false;
    }
    if (settings_.max_user_connections > 0 &&
        manager_.user_server_count(settings_.target.user) >= settings_.max_user_connections) {
        manager_.evict_idle_for(*this, false);
        return false;
    }
    return true;
}

void Pool::open_for_waiters() {
    if (paused_) return;
    while (static_cast<int>(waiters_.eligible()) > connecting_) {
        // The database is unreachable or restarting: one login at a time probes it (no login storm).
        if (outage_attempts_ > 0 && connecting_ > 0) break;
        bool reserve = false;
        if (settings_.reserve_pool_size > 0) reserve = max_wait() >= settings_.reserve_pool_timeout;
        if (!can_open(reserve)) break;
        open_one();
    }
}

ServerTarget Pool::next_target(size_t& host_start) {
    ServerTarget target = settings_.target;
    host_start = 0;
    const size_t n = target.hosts.size();
    if (n < 2) return target;
    host_start = host_cursor_ % n;
    std::rotate(target.hosts.begin(), target.hosts.begin() + static_cast<std::ptrdiff_t>(host_start),
                target.hosts.end());
    target.host = target.hosts.front().host;
    target.port = target.hosts.front().port;
    // round-robin: every new connection starts at the next host; disable: the same host until one fails.
    if (settings_.load_balance_round_robin) host_cursor_ = (host_start + 1) % n;
    return target;
}

void Pool::open_one() {
    auto server = std::make_shared<ServerConnection>(executor_, this, manager_.next_server_id());
    servers_.emplace(server->id(), server);
    ++connecting_;
    auto alive = alive_;
    size_t host_start = 0;
    ServerTarget target = next_target(host_start);
    asio::co_spawn(
        executor_,
        [this, server, alive, target = std::move(target), host_start]() -> asio::awaitable<void> {
            auto status = co_await server->connect(target);
            if (!*alive) {
                server->close("pool was removed");
                co_return;
            }
            on_connect_result(server, status, host_start);
        },
        net::LogIfThrown{"server connect"});
}

void Pool::on_connect_result(const ServerPtr& server, const Status& status, size_t host_start) {
    --connecting_;
    if (const size_t n = settings_.target.hosts.size(); n > 1 && !settings_.load_balance_round_robin) {
        // load_balance_hosts=disable: stay on the host that worked; after a failure start at the next one.
        host_cursor_ = status ? (host_start + server->host_index()) % n : (host_start + 1) % n;
    }
    const bool probe = probe_in_flight_;
    probe_in_flight_ = false;
    if (!status && is_outage_error(status.error()) && !manager_.shutting_down()) {
        on_outage_login_failed(server, status.error());
        return;
    }
    if (!status) {
        const bool was_open = breaker_->state() == BreakerState::kOpen;
        breaker_->on_login_failed(Clock::now(), status.error().sqlstate == sqlstate::kTooManyConnections,
                                  status.error().message);
        if (!was_open && breaker_->state() == BreakerState::kOpen) {
            spdlog::warn("{}: circuit breaker open{}: {}", database_, probe ? " again" : "",
                         breaker_->reason());
            dataplane_counters().breaker_opens++;
        }
        servers_.erase(server->id());
        closing_.erase(server->id());
        ++login_failures_;
        last_login_error_ = status.error();
        dataplane_counters().server_login_failures++;  // control plane (issue 5)
        if (status.error().sqlstate == sqlstate::kTooManyConnections)
            dataplane_counters().server_too_many_clients++;
        login_blocked_until_ = Clock::now() + settings_.server_login_retry;
        // The database is full at this many: an adaptive pool stops asking for more right away.
        if (settings_.adaptive && status.error().sqlstate == sqlstate::kTooManyConnections) {
            adaptive_.cap(open_servers());
            apply_adaptive_limit("the database refused a login (53300)");
        }
        spdlog::warn("S-{}: {}/{} server login failed: {} ({})", server->id(), database_, user_,
                     status.error().message, status.error().sqlstate);
        // Fail fast: the clients that no in-flight login can serve get the server's own error now.
        while (static_cast<int>(waiters_.size()) > connecting_ &&
               servers_.size() == static_cast<size_t>(connecting_)) {
            Waiter* w = pop_waiter_back();
            w->error = status.error();
            wake(w);
        }
        manager_.on_slot_freed(database_, settings_.target.user);
        return;
    }
    last_login_error_.reset();
    login_blocked_until_ = {};
    if (outage_attempts_ > 0) {
        spdlog::warn(
            "{}/{}: database reachable again after {:.2f} s ({} login attempts); serving {} waiting "
            "client(s)",
            database_, user_, std::chrono::duration<double>(Clock::now() - outage_since_).count(),
            outage_attempts_, waiters_.size());
        outage_attempts_ = 0;
    }
    if (breaker_->state() != BreakerState::kClosed) {
        spdlog::info("{}: circuit breaker closed: a server login worked", database_);
        dataplane_counters().breaker_closes++;
    }
    breaker_->on_login_ok(Clock::now());
    if (server_parameters_.empty()) server_parameters_ = server->reported_parameters();
    spdlog::info("S-{}: {}/{} new server connection to {}:{} (pid {})", server->id(), database_, user_,
                 server->host(), server->port(), server->backend_pid());
    put_back(server);
    open_for_waiters();
}

void Pool::on_outage_login_failed(const ServerPtr& server, const Error& error) {
    const auto now = Clock::now();
    servers_.erase(server->id());
    closing_.erase(server->id());
    ++login_failures_;
    dataplane_counters().server_login_failures++;  // control plane (issue 5)
    if (outage_attempts_ == 0) {
        outage_since_ = now;
        spdlog::warn(
            "{}/{}: database unreachable or restarting: {} ({}); {} waiting client(s) keep waiting "
            "(query_wait_timeout {:.0f} s) while one login at a time retries",
            database_, user_, error.message, error.sqlstate, waiters_.size(),
            std::chrono::duration<double>(settings_.query_wait_timeout).count());
    } else if (outage_attempts_ % 100 == 0) {
        spdlog::warn("{}/{}: database still unreachable after {:.1f} s ({} login attempts): {}", database_,
                     user_, std::chrono::duration<double>(now - outage_since_).count(), outage_attempts_,
                     error.message);
    }
    ++outage_attempts_;
    breaker_->on_outage(now, error.message);
    login_blocked_until_ = now + outage_retry_delay(outage_attempts_);
    retry_timer_.expires_at(login_blocked_until_);
    retry_timer_.async_wait([this, alive = alive_](std::error_code ec) {
        if (!ec && *alive) open_for_waiters();
    });
    manager_.on_slot_freed(database_, settings_.target.user);
}

void Pool::apply_settings(PoolSettings settings) {
    const bool was_adaptive = settings_.adaptive;
    // Other connection settings (reload: host, port, host list, server database or user, connect_query,
    // startup parameters): servers made with the old ones close as soon as they are unused (as PgBouncer
    // marks them close_needed; WAIT_CLOSE and server_fast_close act on them).
    const bool moved =
        settings.target.host != settings_.target.host || settings.target.port != settings_.target.port ||
        settings.target.hosts != settings_.target.hosts ||
        settings.target.dbname != settings_.target.dbname || settings.target.user != settings_.target.user ||
        settings.target.connect_query != settings_.target.connect_query ||
        settings.target.startup_params != settings_.target.startup_params;
    settings_ = std::move(settings);
    if (moved) {
        host_cursor_ = 0;
        reconnect_all();
    }
    configure_classes();
    configure_adaptive(was_adaptive);
    // A smaller pool: idle servers beyond the new size go now; active ones when they come back.
    while (!idle_.empty() && static_cast<int>(servers_.size()) > settings_.pool_size) {
        auto s = idle_.front();
        idle_.pop_front();
        s->close("pool size reduced");
    }
    open_for_waiters();
}

bool Pool::evict_one_idle(const std::string& reason) {
    if (idle_.empty()) return false;
    auto s = idle_.front();
    idle_.pop_front();
    s->close(reason);
    return true;
}

void Pool::close_all(const std::string& reason) {
    auto copy = servers_;
    for (auto& [id, s] : copy)
        s->close(reason);
}

void Pool::tick() {
    const auto now = Clock::now();
    // Idle timeout and lifetime, oldest-used first, keeping min_pool_size. Servers already closing still
    // sit in servers_ (until their backend exits), so they are not counted as kept.
    int staying = 0;
    for (const auto& [id, s] : servers_)
        staying += s->closed() ? 0 : 1;
    for (auto it = idle_.begin(); it != idle_.end();) {
        auto s = *it;
        const bool too_old =
            settings_.server_lifetime.count() > 0 && now - s->created_at() > settings_.server_lifetime;
        const bool idle_too_long = settings_.server_idle_timeout.count() > 0 &&
                                   now - s->last_used() > settings_.server_idle_timeout &&
                                   staying > settings_.min_pool_size;
        if (too_old || idle_too_long) {
            --staying;
            it = idle_.erase(it);
            s->close(too_old ? "server_lifetime reached" : "server_idle_timeout reached");
        } else {
            ++it;
        }
    }
    // server_check_query on servers idle longer than server_check_delay, in the background so no client
    // waits for it (0 = at every tick); a failed check closes the server.
    if (!settings_.server_check_query.empty()) {
        for (auto it = idle_.begin(); it != idle_.end();) {
            auto s = *it;
            if (now - std::max(s->last_used(), s->last_checked()) >= settings_.server_check_delay) {
                it = idle_.erase(it);
                // "<empty>": an empty Query, answered by EmptyQueryResponse (PgBouncer 1.25's default).
                s->begin_check(settings_.server_check_query == "<empty>" ? std::string()
                                                                         : settings_.server_check_query);
            } else {
                ++it;
            }
        }
    }
    drop_hung_up_waiters(now);
    breaker_tick();
    if (settings_.adaptive) adaptive_tick(now);
    // Waiters past reserve_pool_timeout may use the reserve pool.
    open_for_waiters();
    // min_pool_size: open ahead so the first clients do not pay for the login.
    while (!manager_.shutting_down() && static_cast<int>(servers_.size()) < settings_.min_pool_size &&
           can_open(false))
        open_one();
}

// ---- adaptive pool size (issue 6 part 4) ----

int Pool::adaptive_budget() const {
    int budget = settings_.pool_size;
    if (budget_ >= 0) budget = std::min(budget, budget_);
    return std::max({budget, settings_.min_pool_size, 1});
}

void Pool::configure_adaptive(bool was_adaptive) {
    if (!settings_.adaptive) {
        adaptive_size_ = settings_.pool_size;
        return;
    }
    AdaptiveLimitSettings s = settings_.adaptive_limit;
    s.min_limit = std::max(1, settings_.min_pool_size);
    s.max_limit = adaptive_budget();
    // Start low: the first windows teach the latency of an unloaded database (the long-term baseline).
    s.initial_limit = s.min_limit;
    if (was_adaptive) {
        adaptive_.configure(s);  // a reload keeps what was learned
    } else {
        adaptive_ = AdaptiveLimit(s);
        adaptive_windows_ = LatencyWindowCollector();
        adaptive_logged_ = adaptive_.limit();
    }
    adaptive_windows_.configure(std::min(settings_.adaptive_window, std::chrono::microseconds(250'000)),
                                settings_.adaptive_window, settings_.adaptive_window_samples);
    apply_adaptive_limit("configuration");
}

void Pool::set_budget(int budget, Clock::time_point until) {
    budget_ = std::max(0, budget);
    budget_until_ = until;
    if (!settings_.adaptive) return;
    adaptive_.set_bounds(std::max(1, settings_.min_pool_size), adaptive_budget());
    apply_adaptive_limit("budget");
}

void Pool::adaptive_tick(Clock::time_point now) {
    if (budget_ >= 0 && now > budget_until_) {
        // The database view went quiet: fall back to pool_size rather than trust an old budget.
        budget_ = -1;
        adaptive_.set_bounds(std::max(1, settings_.min_pool_size), adaptive_budget());
    }
    const LatencyWindowCollector::Totals totals{stats_.query_count, stats_.query_time_us, login_failures_};
    if (auto window = adaptive_windows_.poll(now, totals, peak_in_use_)) {
        peak_in_use_ = in_use_;
        adaptive_.on_window(*window);
    }
    apply_adaptive_limit("latency");
}

void Pool::apply_adaptive_limit(const char* why) {
    const int previous = adaptive_size_;
    adaptive_size_ = adaptive_.limit();
    if (AdaptiveLimit::meaningful_change(adaptive_logged_, adaptive_size_, adaptive_.min_limit(),
                                         adaptive_.max_limit())) {
        spdlog::info(
            "{}/{}: adaptive pool limit {} -> {} ({}; budget {}, latency {:.2f} ms vs {:.2f} ms "
            "long-term)",
            database_, user_, adaptive_logged_, adaptive_size_, why, adaptive_.max_limit(),
            adaptive_.short_rtt_us() / 1000.0, adaptive_.long_rtt_us() / 1000.0);
        adaptive_logged_ = adaptive_size_;
    }
    if (adaptive_size_ < previous) {
        // Idle servers beyond the new limit go now; busy ones when their client is done (put_back).
        while (!idle_.empty() && open_servers() > adaptive_size_) {
            auto s = idle_.front();
            idle_.pop_front();
            s->close("adaptive pool limit lowered");
        }
    } else if (adaptive_size_ > previous) {
        open_for_waiters();
    }
}

AdaptiveStat Pool::adaptive_stat() const {
    AdaptiveStat a;
    a.enabled = settings_.adaptive;
    a.pool_size = settings_.pool_size;
    a.limit = size_limit();
    a.min_limit = settings_.adaptive ? adaptive_.min_limit() : std::max(1, settings_.min_pool_size);
    a.budget = adaptive_budget();
    a.budget_from_view = budget_ >= 0;
    a.servers = open_servers();
    a.in_use = in_use_;
    a.latency_us = adaptive_.short_rtt_us();
    a.long_latency_us = adaptive_.long_rtt_us();
    a.gradient = adaptive_.gradient();
    a.windows = adaptive_.windows();
    return a;
}

}  // namespace poolguard::pool
