// Owns Pool: the server connections of one (database, user) pair, the FIFO of clients waiting for one,
// and the limits that decide when another connection may be opened.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "config/classes.h"
#include "config/config.h"
#include "pool/adaptive_limit.h"
#include "pool/circuit_breaker.h"
#include "pool/priority_classes.h"
#include "pool/server_connection.h"

namespace poolguard::pool {

class PoolManager;

// The error acquire() ends with when the waiting client hung up (nothing is sent to that client).
inline constexpr const char* kWaiterHungUp = "client closed the connection while waiting for a server";

// The effective settings of one pool, recomputed from the configuration at start and on every reload.
struct PoolSettings {
    config::PoolMode mode = config::PoolMode::kSession;
    int pool_size = 20;
    int min_pool_size = 0;
    int reserve_pool_size = 0;
    std::chrono::microseconds reserve_pool_timeout{5'000'000};
    int max_db_connections = 0;
    int max_user_connections = 0;
    std::chrono::microseconds query_wait_timeout{120'000'000};
    std::string reset_query = "DISCARD ALL";
    bool reset_always = false;
    std::chrono::microseconds server_lifetime{3'600'000'000};
    std::chrono::microseconds server_idle_timeout{600'000'000};
    std::chrono::microseconds server_login_retry{15'000'000};
    std::string server_check_query;  // run on servers idle longer than server_check_delay
    std::chrono::microseconds server_check_delay{30'000'000};
    ServerTarget target;
    // A replication connection's pool: a server leaves with its client (closed, never reused).
    bool replication = false;
    // Session mode: a server marked close-needed (RECONNECT, reload) closes at the client's next
    // transaction boundary, and the client with it, instead of at the session's end.
    bool server_fast_close = false;
    // cancel_wait_timeout: how long delivering a client's cancel request to the server may take (connect,
    // send, the server's close); server_connect_timeout when cancel_wait_timeout is 0.
    std::chrono::milliseconds cancel_timeout{10000};
    bool load_balance_round_robin = true;  // host lists: next host per connection (else stay until one fails)
    // The client-side timeouts of this pool's clients ([users] values override the global ones).
    std::chrono::microseconds query_timeout{0};
    std::chrono::microseconds idle_transaction_timeout{0};
    std::chrono::microseconds transaction_timeout{0};
    std::chrono::microseconds client_idle_timeout{0};
    // Priority classes (issue 6): index 0 is "default" (config::effective_classes).
    std::vector<config::ClassConfig> classes = config::effective_classes({});
    // Adaptive pool size (issue 6 part 4): the limit moves between max(1, min_pool_size) and the budget.
    bool adaptive = false;
    AdaptiveLimitSettings adaptive_limit;  // min/max/initial are set by the pool
    std::chrono::microseconds adaptive_window{1'000'000};
    uint64_t adaptive_window_samples = 100;
};

// The adaptive limit of one pool, for SHOW ADAPTIVE, metrics and the journal.
struct AdaptiveStat {
    bool enabled = false;
    int limit = 0;      // server connections the pool may use now
    int min_limit = 0;  // max(1, min_pool_size)
    int budget = 0;     // the ceiling: pool_size, or fewer when the database view says so
    bool budget_from_view = false;
    int pool_size = 0;
    int servers = 0;  // open (not closing) server connections
    int in_use = 0;
    double latency_us = 0;       // mean query time of the last window
    double long_latency_us = 0;  // the long-term average Gradient2 compares it with
    double gradient = 1;
    uint64_t windows = 0;
};

// One priority class of a pool, for SHOW CLASSES, metrics and SHOW GUARD.
struct ClassStat {
    std::string name;
    int priority = 0;
    int max_share = 100;
    int cap = 0;  // servers the class may hold (INT_MAX = no cap)
    int held = 0;
    int waiting = 0;
    std::chrono::microseconds max_wait{0};
};

// Counters shown by logs, metrics and (later) SHOW POOLS.
struct PoolCounters {
    int idle = 0;
    int active = 0;
    int connecting = 0;
    int cleanup = 0;
    int tested = 0;  // running server_check_query / connect_query
    int waiting = 0;
    uint64_t served = 0;  // servers handed to clients
    uint64_t wait_timeouts = 0;
    uint64_t login_failures = 0;
};

// Totals since start, for SHOW STATS and metrics. Plain counters: the pool lives on one thread.
struct PoolStats {
    uint64_t xact_count = 0;
    uint64_t query_count = 0;
    uint64_t bytes_received = 0;  // from clients
    uint64_t bytes_sent = 0;      // to clients
    uint64_t xact_time_us = 0;
    uint64_t query_time_us = 0;
    uint64_t wait_time_us = 0;
    uint64_t server_assignment_count = 0;  // servers handed to clients (SHOW STATS, PgBouncer 1.23+)
    uint64_t client_parse_count = 0;       // named prepared statements: Parse from clients,
    uint64_t server_parse_count = 0;       // Parse sent to servers,
    uint64_t bind_count = 0;               // Bind
};

class Pool {
  public:
    Pool(PoolManager& manager, asio::any_io_executor executor, std::string database, std::string user,
         PoolSettings settings);
    ~Pool();

    // Waits (FIFO) for a clean server. Fails with 53300 query_wait_timeout, or with the server's own login
    // error while logins keep failing.
    // `cls` is the client's priority class (index into settings().classes; out of range = default).
    // Refused at once with 53300 while the database's circuit breaker is open and no idle server is free.
    // `client` (optional): a waiter whose client hangs up (closes its socket or sends Terminate) leaves the
    // queue within about a second with kWaiterHungUp, instead of keeping its place, its max_client_conn slot
    // and the breaker's wait clock until a server reaches it.
    asio::awaitable<Result<ServerPtr>> acquire(int cls = 0, LinkedClient* client = nullptr);
    // acquire()'s fast path without a coroutine: an idle server when one may be handed out at once (nobody
    // queued ahead, class under its cap, not paused), else nullptr and the caller goes through acquire().
    ServerPtr try_acquire_idle(int cls);

    // A client suspended in acquire() (or between start_wait and finish_wait). It is resumed by posting its
    // coroutine's handler (no timer per waiter: arming and cancelling one per hand-off was a timer-queue
    // insert, a cancel and a completion per transaction). query_wait_timeout is enforced by one pool-wide
    // timer.
    struct Waiter {
        ServerPtr server;
        std::optional<Error> error;
        bool timed_out = false;
        bool extended = false;  // kept past its query_wait_timeout once, for a lower-priority waiter refused
        Clock::time_point since = Clock::now();
        Clock::time_point deadline = Clock::time_point::max();
        std::move_only_function<void()> resume;  // set while the coroutine is suspended
        // Its place in waiters_ while queued: leaving the queue is O(1), not a scan of every waiter (with
        // hundreds of clients waiting, the scan was the proxy's top user-space cost).
        PriorityWaitQueue<Waiter>::Handle pos;
        int cls = 0;
        bool queued = false;
        LinkedClient* client = nullptr;         // checked for a hang-up while it waits
        Clock::time_point next_hangup_check{};  // at most one check a second per waiter
        Pool* pool = nullptr;                   // set by start_wait
        std::shared_ptr<bool> alive;            // the pool's liveness flag: false once it was removed
    };

    // acquire() in three steps, for a caller that waits in its own coroutine frame (the client relay: no
    // coroutine frame per wait, which asio cannot recycle once it is over 1 KB). start_wait: the server or
    // the refusal at once, or nullopt with `w` queued (w must stay put until finish_wait). async_wait_for:
    // suspends until the pool wakes `w` (the resumption is posted, never inline). finish_wait: how the
    // wait ended; static, because the pool may have been removed meanwhile.
    std::optional<Result<ServerPtr>> start_wait(int cls, LinkedClient* client, Waiter& w);
    template <typename Token>
    static auto async_wait_for(Waiter& w, Token&& token) {
        return asio::async_initiate<Token, void()>(
            [&w](auto handler) {
                w.resume = [h = std::move(handler)]() mutable { asio::post(std::move(h)); };
            },
            token);
    }
    static Result<ServerPtr> finish_wait(Waiter& w);

    // The relay found the linked client's work finished: hand the server back (transaction/statement mode).
    void maybe_release(const ServerPtr& server);
    // The client is done with the server (unlinks first); `client_gone` when it disconnected.
    void release(const ServerPtr& server, bool client_gone);
    // A clean server is ready for the next client.
    void put_back(const ServerPtr& server);
    // A server started closing: it is never handed out again, but still counts until on_server_closed.
    void on_server_closing(const ServerPtr& server);
    void on_server_closed(const ServerPtr& server);

    void apply_settings(PoolSettings settings);
    // Periodic work: idle timeout, lifetime, min_pool_size, reserve pool.
    void tick();
    // Another pool of the same database/user freed a slot: open connections for waiters if now possible.
    void kick() { open_for_waiters(); }
    // The database view's budget for this pool (adaptive pools only), valid until `until`; after that the
    // budget falls back to pool_size. Applied at once: a lower budget closes idle servers beyond it.
    void set_budget(int budget, Clock::time_point until);
    AdaptiveStat adaptive_stat() const;
    // Server connections this pool may hold now (the adaptive limit, else pool_size).
    int size_limit() const { return settings_.adaptive ? adaptive_size_ : settings_.pool_size; }
    // Closes one idle server to make room elsewhere; false when none is idle.
    bool evict_one_idle(const std::string& reason);
    void close_all(const std::string& reason);

    const std::string& database() const { return database_; }
    const std::string& user() const { return user_; }
    const PoolSettings& settings() const { return settings_; }
    config::PoolMode mode() const { return settings_.mode; }
    int server_count() const { return static_cast<int>(servers_.size()); }
    bool has_waiters() const { return !waiters_.empty(); }
    // Per class: held servers, waiters, longest wait (read-only; O(classes)).
    std::vector<ClassStat> class_stats() const;
    // The database's circuit breaker (shared by every pool of the database).
    const CircuitBreaker& breaker() const { return *breaker_; }
    PoolCounters counters() const;
    PoolStats& stats() { return stats_; }
    const PoolStats& stats() const { return stats_; }
    // PAUSE: clients wait for a server until resume() (servers in use finish normally).
    void pause() { paused_ = true; }
    void resume();
    bool paused() const { return paused_; }
    // Longest current wait among queued clients.
    std::chrono::microseconds max_wait() const;
    // RECONNECT: every server is closed as soon as it is not in use.
    void reconnect_all();
    // server_fast_close: a session-mode server marked close-needed and idle between transactions is closed,
    // its client told and closed.
    void fast_close(const ServerPtr& server);
    void for_each_server(const std::function<void(const ServerConnection&)>& fn) const {
        for (const auto& [id, s] : servers_)
            fn(*s);
    }
    // The database is unreachable or restarting (logins fail with outage errors; clients wait).
    bool in_outage() const { return outage_attempts_ > 0; }
    // ParameterStatus values a new client is told (from the first server login), empty until one logged in.
    const std::map<std::string, std::string>& server_parameters() const { return server_parameters_; }

  private:
    // Waiters whose client hung up leave the queue (janitor tick; only waiters older than a second).
    void drop_hung_up_waiters(Clock::time_point now);

    ServerPtr take_idle();
    void open_for_waiters();
    bool can_open(bool allow_reserve);
    void open_one();
    // `host_start`: the host list entry the connection tried first.
    void on_connect_result(const ServerPtr& server, const Status& status, size_t host_start);
    // The target of the next connection: a host list rotated to start at the host its turn is for.
    ServerTarget next_target(size_t& host_start);
    // A login failed with an outage error (pool/outage.h): waiters keep waiting, one retry after a backoff.
    void on_outage_login_failed(const ServerPtr& server, const Error& error);
    void hand_to_waiter(Waiter* waiter, const ServerPtr& server);
    // Resumes a waiter's coroutine (posted, never inline).
    static void wake(Waiter* waiter);
    // Makes the query_wait_timeout timer fire no later than `deadline`.
    void arm_wait_timer(Clock::time_point deadline);
    void on_wait_timer();
    // Takes the first (or last) waiter out of the FIFO.
    Waiter* pop_waiter_front();
    Waiter* pop_waiter_back();
    bool over_capacity() const;
    // Class share accounting: a server counts for the class of the client it was handed to until release.
    void hold(const ServerPtr& server, int cls);
    void unhold(const ServerPtr& server);
    // Idle servers to waiters whose class came back under its cap.
    void serve_from_idle();
    void configure_classes();
    // Circuit breaker: refuse every waiter no login in flight can serve (the breaker just opened).
    void fail_waiters_fast(const Error& error);
    void breaker_tick();
    Error breaker_error() const;
    // Adaptive pool size: feeds closed windows to the limiter, applies the budget and the new limit.
    void configure_adaptive(bool was_adaptive);
    void adaptive_tick(Clock::time_point now);
    void apply_adaptive_limit(const char* why);
    int adaptive_budget() const;
    int open_servers() const { return static_cast<int>(servers_.size() - closing_.size()); }

    PoolManager& manager_;
    asio::any_io_executor executor_;
    std::string database_;
    std::string user_;
    PoolSettings settings_;

    std::unordered_map<uint64_t, ServerPtr> servers_;  // every server of this pool that is not closed
    std::deque<ServerPtr> idle_;                       // most recently used at the back
    PriorityWaitQueue<Waiter> waiters_;                // per class FIFOs, served by priority within shares
    asio::steady_timer wait_timer_;                    // the earliest query_wait_timeout deadline
    bool wait_timer_armed_ = false;
    Clock::time_point wait_timer_expiry_{};
    uint64_t wait_timer_generation_ = 0;
    int connecting_ = 0;
    size_t host_cursor_ = 0;  // host list: the entry the next connection starts with
    std::optional<Error> last_login_error_;
    // Outage (issue 15): consecutive logins that failed because the database was unreachable or restarting.
    int outage_attempts_ = 0;
    Clock::time_point outage_since_{};
    asio::steady_timer retry_timer_;  // the next login attempt during an outage
    Clock::time_point login_blocked_until_{};
    std::map<std::string, std::string> server_parameters_;
    PoolStats stats_;
    bool paused_ = false;
    uint64_t served_ = 0;
    uint64_t wait_timeouts_ = 0;
    uint64_t login_failures_ = 0;
    CircuitBreaker* breaker_;  // owned by the manager, one per database
    bool probe_in_flight_ = false;
    // Adaptive pool size (issue 6 part 4). in_use_/peak_in_use_ are two integer updates per hand-out.
    AdaptiveLimit adaptive_;
    LatencyWindowCollector adaptive_windows_;
    int adaptive_size_ = 0;    // adaptive_.limit(), cached for the hot path
    int adaptive_logged_ = 0;  // the limit last logged, so only meaningful moves are logged
    int budget_ = -1;          // from the database view; -1 = none (pool_size)
    Clock::time_point budget_until_{};
    int in_use_ = 0;  // servers handed to clients
    int peak_in_use_ = 0;
    std::unordered_set<uint64_t> closing_;  // ids of servers closing but not yet closed
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace poolguard::pool
