// Owns ServerConnection: one connection to a PostgreSQL server — login, the relay of its replies to the
// linked client, ReadyForQuery tracking, and the clean-up that makes it safe to hand to the next client.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/error.h"
#include "config/host_list.h"
#include "net/byte_buffer.h"
#include "net/stream.h"
#include "net/tls_context.h"
#include "pool/linked_client.h"
#include "protocol/pg/frame_scanner.h"
#include "protocol/pg/prepared_statements.h"
#include "protocol/pg/scram.h"

namespace poolguard::pool {

class Pool;

// SCRAM pass-through: keys recovered from a client's own SCRAM exchange, so poolguard can log in to the
// server as that client without knowing its password (the secret came from the auth_file or auth_query).
struct ScramPassThrough {
    protocol::pg::ScramKey client_key{};
    protocol::pg::ScramKey server_key{};
    bool operator==(const ScramPassThrough&) const = default;
};

// Where and how to log in to a server.
struct ServerTarget {
    std::string host;  // empty or starting with '/' = Unix socket directory
    int port = 5432;
    // A host list (2+ entries; host/port are its first): tried in order until one accepts the connection,
    // all within connect_timeout.
    std::vector<config::HostEntry> hosts;
    std::string dbname;
    std::string user;
    std::string secret;  // plain password, "md5..." or "SCRAM-SHA-256$..." (empty: none known)
    std::optional<ScramPassThrough> scram_keys;  // with a SCRAM secret: log in with these keys
    std::string connect_query;                   // run right after login, before any client
    std::vector<std::pair<std::string, std::string>> startup_params;  // extra startup parameters
    std::chrono::milliseconds connect_timeout{15000};
    net::TlsContextPtr tls;  // server_tls_sslmode (null: disable); the context of the last reload
};

using Clock = std::chrono::steady_clock;

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
  public:
    enum class State {
        kConnecting,  // TCP connect + login in progress
        kIdle,        // logged in, clean, in the pool's idle list
        kActive,      // handed to a client (linked, or on its way to a waiter)
        kCleanup,     // running ROLLBACK / server_reset_query before going back to the pool
        kClosed,
    };

    ServerConnection(asio::any_io_executor executor, Pool* pool, uint64_t id);
    ~ServerConnection();

    // Connects and logs in; on success the relay loop starts and the connection is ready to be linked.
    asio::awaitable<Status> connect(const ServerTarget& target);

    // --- linking (all single-threaded on the pool's executor) ---
    // Links `client`. A server that closed on its way to the client (a restart's FATAL arrived between the
    // pool's hand-off and the waiter's resumption) stays closed and unlinked: callers check closed() after.
    void link(LinkedClient* client);
    void unlink() { client_ = nullptr; }
    LinkedClient* linked_client() const { return client_; }

    // Accounting of what the client sent, called by the session before it writes those bytes.
    void note_client_message(char type);  // a client message starts
    void note_client_partial(bool partial) { client_partial_ = partial; }
    // Queues an internal query (SET, ROLLBACK, reset) whose replies are swallowed; written with the next
    // flush.
    void queue_internal_query(std::string_view sql);
    std::string& pending_out() { return pending_out_; }

    // True when nothing the client sent is still unanswered and the server is idle ('I').
    bool at_release_point() const {
        return expected_rfq_ == 0 && !extended_open_ && !client_partial_ && !copy_in_ && swallow_rfq_ == 0 &&
               tx_status_ == 'I' && responses_.empty();
    }
    // Outstanding client work that cannot be cleanly abandoned (a query running, a COPY, a partial message).
    bool busy_for_client() const {
        return expected_rfq_ > 0 || extended_open_ || client_partial_ || copy_in_ || !responses_.empty();
    }

    // Named prepared statements: while enabled, every client request's response is tracked in order so
    // poolguard can answer some itself and swallow the replies to what it injected.
    void enable_statement_tracking(size_t capacity) {
        if (!statements_) statements_ = std::make_unique<protocol::pg::ServerStatements>(capacity);
        track_responses_ = true;
    }
    void disable_statement_tracking() { track_responses_ = false; }
    bool tracking_statements() const { return track_responses_; }
    protocol::pg::ServerStatements& statements() { return *statements_; }
    // Named statements prepared on this server (SHOW SERVERS' prepared_statements).
    size_t prepared_count() const { return statements_ ? statements_->size() : 0; }
    protocol::pg::ResponseQueue& responses() { return responses_; }
    char tx_status() const { return tx_status_; }
    // When the oldest unanswered client request was sent (valid while busy_for_client()).
    Clock::time_point busy_since() const { return busy_since_; }
    // When the current transaction's first message was sent (valid while tx_status() != 'I').
    Clock::time_point xact_since() const { return xact_since_; }
    // When the server last answered ReadyForQuery to the client.
    Clock::time_point ready_since() const { return ready_since_; }

    // Starts the steps that bring this server back to a clean state, then returns it to the pool.
    // `rollback` when the client left inside a transaction; `reset` runs server_reset_query.
    void begin_cleanup(bool reset_query, const std::string& reset_sql);
    // Runs `sql` (server_check_query) while the server is out of the pool, then returns it;
    // a failure closes the server.
    void begin_check(const std::string& sql);
    bool testing() const { return testing_ && state_ == State::kCleanup; }
    // The priority class holding this server (Pool's share accounting), -1 while no client holds it.
    int held_class = -1;

    // Asks the server backend to cancel its current query (new connection + CancelRequest).
    void send_cancel();

    // Closes the socket; the relay loop ends and the pool forgets this connection.
    void close(const std::string& reason);

    // Parameters the server reported (ParameterStatus), by lowercase name.
    const std::map<std::string, std::string, std::less<>>& parameters() const { return params_; }
    std::map<std::string, std::string> reported_parameters() const { return reported_; }
    // The (interned, immutable) set of client parameter values this server's parameters were last found
    // to match; reset whenever the server reports a changed value. Lets the per-hand-off parameter sync
    // skip the comparison when a client with the same values gets this server (the common case).
    const std::shared_ptr<const void>& synced_params() const { return synced_params_; }
    // The internal query just queued SETs these (lowercase name, client's value) pairs: once it succeeds,
    // the value the server then has is remembered as that spelling's equivalent (DateStyle 'iso' is
    // 'ISO, MDY'), so a client whose value is only spelled differently causes no SET per transaction.
    void note_parameter_sets(std::vector<std::pair<std::string, std::string>> sets);
    // True when SET `name` = `requested` was seen to leave this server with `have`.
    bool equivalent_parameter(std::string_view name, std::string_view requested,
                              std::string_view have) const {
        auto it = equivalents_.find(name);
        return it != equivalents_.end() && it->second.first == requested && it->second.second == have;
    }
    void set_synced_params(std::shared_ptr<const void> set) { synced_params_ = std::move(set); }

    void mark_close_needed() { close_needed_ = true; }
    bool close_needed() const { return close_needed_; }
    uint64_t linked_client_id() const { return linked_client_id_; }
    void set_linked_client_id(uint64_t id) { linked_client_id_ = id; }
    const std::string& host() const { return host_; }
    // Which entry of the target's host list connected (0 without a list).
    size_t host_index() const { return host_index_; }
    int port() const { return port_; }
    State state() const { return state_; }
    void set_state(State s) { state_ = s; }
    uint64_t id() const { return id_; }
    uint32_t backend_pid() const { return backend_pid_; }
    Clock::time_point created_at() const { return created_at_; }
    Clock::time_point last_used() const { return last_used_; }
    // Back in the pool after a client used it; a server coming back from a check query keeps its time.
    void touch() {
        if (!just_checked_) last_used_ = Clock::now();
        just_checked_ = false;
    }
    Clock::time_point last_checked() const { return last_checked_; }
    // True when the socket has bytes, EOF or an error waiting while the server should be silent (idle in the
    // pool): a reset connection is as unusable as a closed one.
    bool has_unexpected_input() const;
    net::Stream& socket() { return socket_; }
    // "TLSv1.3/TLS_AES_256_GCM_SHA384" for SHOW SERVERS, "" for a plain connection.
    std::string tls_description() const { return net::tls_description(socket_); }
    bool closed() const { return state_ == State::kClosed; }
    const std::string& close_reason() const { return close_reason_; }
    Pool* pool() const { return pool_; }
    void detach_pool() { pool_ = nullptr; }

  private:
    asio::awaitable<Status> login(const ServerTarget& target);
    asio::awaitable<Result<net::Socket>> connect_to_host_list(const ServerTarget& target);
    // server_tls_sslmode: SSLRequest, then the handshake or (prefer/allow) plain TCP (server_tls.cpp).
    asio::awaitable<Status> negotiate_tls(const ServerTarget& target);
    // connect_query, before the relay starts: its failure is a login failure (server_login_retry applies).
    asio::awaitable<Status> run_connect_query(const std::string& sql);
    asio::awaitable<Result<std::pair<char, std::string>>> read_login_message();
    asio::awaitable<void> relay_loop();
    asio::awaitable<void> relay();
    void finalize();
    void on_ready_for_query(char status, bool internal);
    void finish_cleanup();
    void send_cleanup();
    void fail_linked(const std::string& message, const char* sqlstate);

    net::Stream socket_;
    Pool* pool_;
    uint64_t id_;
    State state_ = State::kConnecting;
    LinkedClient* client_ = nullptr;
    std::string close_reason_;

    net::ByteBuffer in_;
    protocol::pg::FrameScanner scanner_;
    std::string pending_out_;  // internal queries waiting to be written ahead of client bytes

    char tx_status_ = 'I';
    int expected_rfq_ = 0;  // ReadyForQuery the client is owed
    int swallow_rfq_ = 0;   // ReadyForQuery of internal queries, not shown to the client
    bool extended_open_ = false;
    bool client_partial_ = false;
    bool copy_in_ = false;
    bool swallowing_current_ = false;
    Clock::time_point busy_since_{};
    Clock::time_point xact_since_{};
    bool close_needed_ = false;
    bool testing_ = false;  // the clean-up in progress is a check / connect query
    bool just_checked_ = false;
    Clock::time_point last_checked_{};
    uint64_t linked_client_id_ = 0;
    Clock::time_point ready_since_{};  // the message being streamed belongs to an internal query
    std::string last_internal_error_;
    std::unique_ptr<protocol::pg::ServerStatements> statements_;
    protocol::pg::ResponseQueue responses_;
    bool track_responses_ = false;
    bool relay_running_ = false;
    bool finalized_ = false;
    bool dropping_current_ = false;  // the message being streamed is dropped by the response queue
    std::string fakes_;              // poolguard's own answers waiting to be written to the client

    std::map<std::string, std::string, std::less<>>
        params_;                                   // tracked session parameters as the server has them
    std::map<std::string, std::string> reported_;  // every ParameterStatus seen at login (for clients)
    std::shared_ptr<const void> synced_params_;    // see synced_params()
    // note_parameter_sets: the pairs, internal ReadyForQuery still to come before their SET's, and the
    // internal error count when they were queued; equivalents_ by name: (requested, what the server had).
    std::vector<std::pair<std::string, std::string>> pending_sets_;
    int pending_sets_rfq_ = 0;
    uint64_t internal_errors_ = 0;
    uint64_t pending_sets_errors_ = 0;
    std::map<std::string, std::pair<std::string, std::string>, std::less<>> equivalents_;
    uint32_t backend_pid_ = 0;
    uint32_t backend_key_ = 0;
    std::string host_;
    int port_ = 0;
    size_t host_index_ = 0;
    Clock::time_point created_at_;
    Clock::time_point last_used_;
    asio::steady_timer drain_timer_;  // bounds the wait for the server's EOF after Terminate
};

using ServerPtr = std::shared_ptr<ServerConnection>;

}  // namespace poolguard::pool
