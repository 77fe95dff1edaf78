// Owns ClientSession: one client connection from its startup packet to its close — login and
// authentication, binding to a pooled server for each transaction, and relaying its messages.
#pragma once

#include <asio.hpp>
#include <map>
#include <memory>
#include <string>

#include "admin/admin_console.h"
#include "auth/hba.h"
#include "common/error.h"
#include "common/error_kinds.h"
#include "config/config.h"
#include "net/byte_buffer.h"
#include "net/stream.h"
#include "net/tls_context.h"
#include "pool/linked_client.h"
#include "pool/pool.h"
#include "protocol/pg/frame_scanner.h"
#include "protocol/pg/messages.h"
#include "protocol/pg/scram.h"
#include "session/client_caps.h"
#include "session/tracked_params.h"

namespace poolguard::session {

class Proxy;

class ClientSession : public pool::LinkedClient, public std::enable_shared_from_this<ClientSession> {
  public:
    ClientSession(Proxy& proxy, net::Socket socket, uint64_t id);
    ~ClientSession() override;

    asio::awaitable<void> run();
    // True while the client is parked: idle for a while, its coroutines ended, a plain readiness callback
    // (holding the session) restarts the relay when the client sends again. For SHOW CLIENTS and tests.
    bool parked() const { return parked_; }

    // pool::LinkedClient
    std::shared_ptr<pool::LinkedClient> keep_alive() override { return weak_from_this().lock(); }
    net::Stream& client_socket() override { return socket_; }
    net::WriteGate& client_write_gate() override { return write_gate_; }
    protocol::pg::ClientStatements* client_statements() override { return &statements_; }
    void on_server_parameter(const std::string& name, const std::string& value) override;
    void on_server_released() override;
    void on_server_lost(const protocol::pg::ErrorFields& error) override;
    void on_protocol_refusal(const protocol::pg::ErrorFields& error) override;
    void on_bytes_to_client(size_t n) override { bytes_out_ += n; }

    // Proxy is stopping: a client between transactions is told and closed now; one inside a transaction
    // is closed when the transaction ends.
    // Returns true when the client was closed now.
    bool on_shutdown(std::chrono::steady_clock::time_point now);
    // Enforces query_timeout, idle_transaction_timeout and client_idle_timeout (called by the proxy's
    // janitor).
    void check_timeouts(std::chrono::steady_clock::time_point now);
    // transaction_timeout (global or [users]); true when it closed the client.
    bool check_transaction_timeout(std::chrono::steady_clock::time_point now);
    // A CancelRequest carrying this client's key arrived.
    void cancel_running_query();

    // The Proxy is being destroyed before this session (main() destroys its io_context, and the sessions
    // suspended in it, after the Proxy): the destructor must not reach the Proxy then.
    void detach_proxy() { registered_ = false; }

    uint64_t id() const { return id_; }
    uint32_t cancel_pid() const { return cancel_pid_; }
    uint32_t cancel_key() const { return cancel_key_; }
    bool linked() const { return server_ != nullptr; }
    // For SHOW CLIENTS and the admin verbs.
    const std::string& user() const { return user_; }
    const std::string& database() const { return database_; }
    const std::string& peer() const { return peer_; }
    int peer_port() const { return peer_port_; }
    bool waiting() const { return waiting_; }
    std::chrono::steady_clock::time_point wait_started() const { return wait_started_; }
    std::chrono::system_clock::time_point connect_time() const { return connect_time_; }
    std::chrono::system_clock::time_point request_time() const { return request_time_; }
    std::string application_name() const {
        const std::string* value = vars_.find("application_name");
        return value ? *value : std::string();
    }
    const pool::ServerPtr& server() const { return server_; }
    const pool::Pool* pool() const { return pool_; }
    // The client's priority class: an index into pool()->settings().classes.
    int pool_class() const { return pool_class_; }
    bool is_admin() const { return admin_; }
    // SHOW CLIENTS' replication column (PgBouncer 1.23+): "none", "logical" or "physical".
    const char* replication_mode() const {
        return replication_ == Replication::kPhysical  ? "physical"
               : replication_ == Replication::kLogical ? "logical"
                                                       : "none";
    }
    // KILL / KILL_CLIENT from the admin console.
    void kill(const std::string& reason);
    // Gives back the server (closed when busy), sends a FATAL of `kind` (SQLSTATE from common/error_kinds.h)
    // and closes the connection.
    void end_session(ErrorKind kind, const std::string& reason);
    bool logged_in() const { return logged_in_; }
    // TLS state for SHOW CLIENTS, HBA hostssl/hostnossl and auth_type = cert (client_tls.cpp).
    bool is_tls() const { return socket_.is_tls(); }
    std::string tls_description() const { return net::tls_description(socket_); }
    // The common name of the client's verified certificate ("" without one).
    const std::string& client_cert_name() const { return client_cert_name_; }
    // Named prepared statements of this client (SHOW CLIENTS).
    size_t prepared_count() const { return statements_.size(); }
    // Accepted during a shutdown (on the Unix socket): only an admin console login is served.
    void restrict_to_admin_console() { admin_only_ = true; }
    // Control plane (issue 5): leak reports. The last Query/Parse text (truncated), when the server was
    // bound (the transaction's start in transaction mode).
    const std::string& last_statement() const { return last_statement_; }
    std::chrono::steady_clock::time_point bound_at() const { return bound_at_; }

  private:
    asio::awaitable<Status> read_startup();
    // Password exchange of one method (plain, md5, scram-sha-256; trust and any let the client in).
    asio::awaitable<Status> authenticate(const std::string& secret, config::AuthType type);
    // login_auth.cpp: authenticates by auth_type or, under auth_type = hba, by the matching rule.
    asio::awaitable<Status> authenticate_login(const std::string& secret);
    // The peer method: the Unix-socket peer's OS user is the login's user, or mapped to it by `map`.
    Status check_peer(const std::string& map, const auth::IdentMaps& ident) const;
    // User pgbouncer over the Unix socket from poolguard's own UID: the admin console without a password.
    bool admin_peer_login() const;
    // TLS in the startup phase (client_tls.cpp).
    asio::awaitable<Status> maybe_direct_tls();
    asio::awaitable<Status> answer_encryption_request(bool gss);
    asio::awaitable<Status> client_handshake(bool direct);
    Status check_client_tls();
    asio::awaitable<Result<std::pair<char, std::string>>> read_auth_message();
    // The admin console's next message, up to kMaxAdminMessage; a longer one is read past and answered with
    // an ERROR (54000) and ReadyForQuery, and the console goes on (session/admin_input.cpp).
    asio::awaitable<Result<std::pair<char, std::string>>> read_admin_message();
    // WAIT_CLOSE: until no server (of the database, or any) is marked close-needed; SUSPEND: until no
    // client's output is still being written, at most suspend_timeout (then those clients are closed).
    // False when the session is closing meanwhile (session/admin_input.cpp).
    asio::awaitable<bool> admin_wait(const admin::AdminConsole::PendingWait& wait);
    asio::awaitable<Status> finish_login();
    asio::awaitable<void> relay();
    // Parks the session (true) when parked_exit_ is set: relay() ended because the janitor asked it to, or
    // run() found nothing sent right after login.
    bool park_if_requested();
    void on_unparked(std::error_code ec);
    asio::awaitable<void> resume_relay();
    // Ends the session: gives back the server, closes the socket, unregisters, logs the disconnection.
    void finish();
    asio::awaitable<void> admin_loop();
    asio::awaitable<Status> admin_login();
    // Around a wait for a server in relay(): begin_wait marks the client queued; end_wait records the wait
    // and links the server, or queues the refusal for the client (relay flushes it) and fails. A server that
    // closed on its way is given back and server_ stays empty: the caller waits for another.
    void begin_wait();
    Status end_wait(Result<pool::ServerPtr> server);
    // Links the server handed out for this transaction (by the pool's wait or its fast path).
    void attach_server(pool::ServerPtr server);
    void queue_error(const protocol::pg::ErrorFields& error);
    asio::awaitable<void> flush_client_out();
    // Ends the client after a message it must not send: the bytes before it still go to `server`, the server
    // goes back to the pool dirty (rolled back), the client gets `error` and the session closes for `reason`.
    asio::awaitable<void> close_after_forwarding(pool::ServerPtr server, std::string_view forwarded,
                                                 protocol::pg::ErrorFields error, std::string reason);
    void queue_parameter_sync(pool::ServerConnection& server);
    void close_socket();
    // Sends a FATAL error without blocking and closes the connection.
    void terminate_with(const protocol::pg::ErrorFields& error);
    void handle_cancel_request(uint32_t pid, uint32_t key);
    void note_statement(char type, std::string_view body);  // control plane (issue 5)

    Proxy& proxy_;
    net::Stream socket_;
    uint64_t id_;
    std::string peer_;
    int peer_port_ = 0;
    net::ByteBuffer in_;
    bool awaiting_input_ = false;  // relay() waits for readability with nothing unread
    bool reading_ = false;         // relay() waits for readability (issue 15: stalled mid-message)
    std::chrono::steady_clock::time_point
        last_progress_{};  // last janitor pass that saw a read or no partial
    uint64_t reads_ = 0;   // reads by relay(), for the janitor's idle-buffer check
    uint64_t reads_at_last_check_ = 0;
    uint8_t idle_checks_ = 0;      // janitor passes in a row with no read while waiting for input
    bool park_requested_ = false;  // the janitor cancelled relay()'s wait to park the session
    // relay() is in a drained wait (net::async_wait_drained), which misses a reset or the last bytes whose
    // readiness edge came with the bytes it just read; the janitor looks once a second (check_timeouts).
    bool in_drained_wait_ = false;
    bool rearm_requested_ = false;  // the janitor cancelled a drained wait that missed input: wait again
    uint8_t drained_checks_ = 0;    // janitor passes in a row with relay() in the same drained wait
    bool parked_exit_ = false;      // relay() ended because of that request
    bool parked_ = false;
    protocol::pg::FrameScanner scanner_;

    std::string user_;
    std::string database_;
    // The startup packet's replication parameter: true (physical) or database (logical).
    enum class Replication : uint8_t { kNone, kPhysical, kLogical };
    Replication replication_ = Replication::kNone;
    // replication_pool.cpp: "true"/"on"/"yes"/"1" physical, "database" logical, false values none.
    static std::optional<Replication> parse_replication(std::string_view value);
    pool::Pool& replication_pool(const config::DatabaseConfig& db, const std::string& secret);
    // login_auth.cpp: the startup packet's `options` (-c name=value): tracked parameters are kept,
    // ignore_startup_parameters dropped, anything else refused as PgBouncer 1.25 does.
    Status apply_startup_options(const std::vector<std::pair<std::string, std::string>>& params);
    TrackedParams vars_;  // tracked session parameters, inline (no map nodes per client)
    // vars_ interned (clients with equal values share one object); built at the first hand-off, dropped
    // when vars_ changes. Compared by identity with the server's synced_params().
    std::shared_ptr<const std::string> param_set_;
    pool::Pool* pool_ = nullptr;
    int pool_class_ = 0;
    pool::ServerPtr server_;
    bool logged_in_ = false;
    // In the proxy's client registry: from the constructor until finish() or the destructor, whichever
    // comes first, so no exit path (an exception unwinding run(), frames destroyed) leaves a dangling entry.
    bool registered_ = false;
    bool admin_ = false;             // connected to the admin console database
    bool admin_only_ = false;        // see restrict_to_admin_console()
    bool admin_can_modify_ = false;  // in admin_users (else stats_users: SHOW only)
    bool closing_ = false;
    uint32_t cancel_pid_ = 0;
    uint32_t cancel_key_ = 0;
    uint64_t bytes_out_ = 0;
    net::WriteGate write_gate_;
    protocol::pg::ClientStatements statements_;
    protocol::pg::Rewriter rewriter_;
    bool track_statements_ = false;
    std::string to_server_;   // rewritten client bytes (prepared statements)
    std::string fakes_;       // poolguard's own answers to the client
    std::string client_out_;  // bytes poolguard itself sends the client (errors) while not linked
    std::chrono::steady_clock::time_point connected_at_;
    std::chrono::steady_clock::time_point idle_since_;  // last time the client became idle (no server)
    bool waiting_ = false;                              // queued for a server
    bool wait_notified_ = false;                        // query_wait_notify NOTICE sent for this wait
    std::chrono::steady_clock::time_point wait_started_;
    std::chrono::system_clock::time_point connect_time_ = std::chrono::system_clock::now();
    std::chrono::system_clock::time_point request_time_ = connect_time_;
    std::string close_reason_;  // empty: "client closed the connection" (no heap string per client)
    std::optional<protocol::pg::ScramKey> scram_client_key_;  // from a SCRAM login with a verifier secret
    ClientCaps::Slot client_slot_;  // this client's place under max_db/user_client_connections
    std::string last_statement_;    // control plane (issue 5)
    std::string client_cert_name_;  // CN of a verified client certificate
    std::chrono::steady_clock::time_point bound_at_;  // control plane (issue 5)
};

}  // namespace poolguard::session
