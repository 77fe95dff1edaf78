// Owns Proxy: the running pooler — listeners, the registry of clients (cancel keys, max_client_conn),
// the auth_file secrets, the pools, configuration reload and graceful shutdown.
#pragma once

#include <asio.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "admin/admin_backend.h"
#include "auth/hba.h"
#include "common/error.h"
#include "config/config.h"
#include "net/socket.h"
#include "net/tls_context.h"
#include "pool/pool_manager.h"
#include "protocol/pg/scram.h"
#include "session/client_caps.h"
#include "session/peer_cancel.h"

namespace poolguard::session {

class ClientSession;
class AdminService;

class Proxy {
  public:
    Proxy(asio::io_context& io, std::shared_ptr<const config::Config> config);
    ~Proxy();

    // Loads the auth_file, opens the listeners and starts accepting.
    Status start();
    // Re-reads the configuration file (SIGHUP, RELOAD). Errors keep the old configuration and are returned
    // (the admin console shows them to the admin who asked).
    Status reload();
    // How a shutdown waits (PgBouncer 1.23+): SIGINT / SHUTDOWN WAIT_FOR_SERVERS lets transactions in flight
    // finish and closes each client at its next transaction boundary; SIGTERM / SHUTDOWN WAIT_FOR_CLIENTS
    // keeps serving the connected clients and exits when the last one (admin consoles included) has left.
    // Both stop accepting on TCP at once; the Unix socket stays open for admin console logins only.
    enum class ShutdownMode { kNone, kWaitForServers, kWaitForClients };
    // Starts a shutdown of that mode; asked for while one is already in progress, stops now instead.
    void begin_shutdown(ShutdownMode mode);
    void shutdown_graceful() { begin_shutdown(ShutdownMode::kWaitForServers); }
    // SIGQUIT / SHUTDOWN: stop now.
    void shutdown_now();

    // What the process around the proxy is told of its lifecycle (cli: the service manager, sd_notify).
    // Each may be empty. `reloaded` gets the reload's outcome; `stopping` is called once, when the first
    // shutdown of any kind begins, with a short description of it; `stats` gets the log_stats line every
    // stats_period.
    struct LifecycleHooks {
        std::function<void()> reloading;
        std::function<void(const Status&)> reloaded;
        std::function<void(std::string_view)> stopping;
        std::function<void(std::string_view)> stats;
    };
    void set_lifecycle_hooks(LifecycleHooks hooks) { hooks_ = std::move(hooks); }
    bool wants_stats_line() const { return static_cast<bool>(hooks_.stats); }
    void stats_line(std::string_view line) {
        if (hooks_.stats) hooks_.stats(line);
    }
    // The listeners were passed by the service manager (socket activation) instead of opened from
    // listen_addr / unix_socket_dir, which are then ignored (as PgBouncer 1.25.2 does).
    bool socket_activated() const { return socket_activated_; }

    // The configuration in force. RELOAD and admin SET replace it: code that suspends (co_await) while it
    // uses the configuration holds config_snapshot() instead of this reference.
    const config::Config& config() const { return *config_; }
    std::shared_ptr<const config::Config> config_snapshot() const { return config_; }
    pool::PoolManager& pools() { return *pools_; }
    // The TLS context for new client connections (null: client_tls_sslmode = disable). A reload replaces
    // it; sessions keep the one they started with.
    const net::TlsContextPtr& client_tls() const { return tls_.client; }
    // Any shutdown in progress (new clients are refused, admin consoles over the Unix socket excepted).
    bool shutting_down() const { return shutting_down_; }
    // WAIT_FOR_SERVERS: clients are closed at their next transaction boundary.
    bool closing_clients() const { return shutdown_mode_ == ShutdownMode::kWaitForServers; }
    ShutdownMode shutdown_mode() const { return shutdown_mode_; }

    // Client registry. register_client assigns the cancel key.
    void register_client(ClientSession* client, uint32_t& pid, uint32_t& key);
    void unregister_client(ClientSession* client);
    size_t client_count() const { return clients_.size(); }
    // False when no client holds that key (the caller logs the refusal). With peering, a key that came
    // through peers (a lower TTL) matches the key handed out.
    bool forward_cancel(uint32_t pid, uint32_t key);
    // Logged-in clients per database and per user (max_db/user_client_connections).
    ClientCaps& client_caps() { return client_caps_; }
    // Cancel requests for clients of other [peers] processes (peer_id > 0).
    PeerCancels& peer_cancels() { return peer_cancels_; }

    const std::unordered_map<uint64_t, ClientSession*>& clients() const { return clients_; }
    // The open listening sockets (SHOW FDS): descriptor, address ("unix" for the Unix socket), port.
    struct ListenerInfo {
        int fd = -1;
        std::string addr;
        int port = 0;
    };
    std::vector<ListenerInfo> listeners() const;
    admin::AdminBackend& admin_backend();

    // Admin state per database ("" = every database).
    void set_paused(const std::string& database, bool paused);
    bool database_paused(const std::string& database) const;
    void set_disabled(const std::string& database, bool disabled);
    bool database_disabled(const std::string& database) const { return disabled_.contains(database); }
    // A pool was created: apply PAUSE state that was set before it existed.
    void on_pool_created(pool::Pool& pool);
    // Replaces the configuration in force (admin SET); pools pick up the new settings.
    void apply_config(std::shared_ptr<const config::Config> config);

    // The auth_file entry for a user, if any.
    std::optional<std::string> secret_for(const std::string& user) const;
    // Every auth_file entry by user name.
    const std::map<std::string, std::string>& auth_file_secrets() const { return secrets_; }
    // SCRAM verifier for a plain-text password, computed once per (user, password).
    const protocol::pg::ScramSecret& scram_secret_for_plain(const std::string& user,
                                                            const std::string& password);
    // auth_hba_file and auth_ident_file as loaded (auth_type = hba); a snapshot a login can hold.
    std::shared_ptr<const auth::AuthFiles> auth_files() const { return auth_files_; }

  private:
    Status reload_config();
    Status open_listeners();
    // Socket activation: adopts the sockets the service manager passed; false when it passed none.
    Result<bool> adopt_passed_listeners();
    void notify_stopping(std::string_view what);
    // Listener hand-off between instances sharing the port (so_reuseport; proxy_handoff.cpp).
    void open_handoff_listener();
    std::vector<pid_t> find_handoff_siblings() const;
    asio::awaitable<void> handoff_accept_loop();
    asio::awaitable<void> take_over_listeners(asio::local::stream_protocol::socket socket);
    asio::awaitable<void> hand_off_listeners(std::vector<pid_t> siblings);
    asio::awaitable<bool> hand_off_to(pid_t sibling, const std::vector<int>& fds);
    // Accepts the connections already queued on every open listener, then closes it.
    void drain_and_close_listeners();
    asio::awaitable<void> accept_loop(net::Acceptor& acceptor);
    // Runs a ClientSession for an accepted connection; `admin_only`: accepted on the Unix socket during a
    // shutdown, where only admin console logins are served.
    void start_client(net::Socket socket, bool admin_only = false);
    asio::awaitable<void> shutdown_watch();
    // Every 100 ms: client-side timeouts (query_timeout, idle_transaction_timeout, client_idle_timeout).
    asio::awaitable<void> client_janitor();
    // autodb_idle_timeout: pools made from "*" that no client used for that long are dropped
    // (session/proxy_autodb.cpp; called by client_janitor about once a second).
    void expire_autodb_pools(std::chrono::steady_clock::time_point now);
    Status load_auth_file(const config::Config& config);
    Status load_hba(const config::Config& config);
    void remove_unix_socket();

    asio::io_context& io_;
    std::shared_ptr<const config::Config> config_;
    net::TlsContexts tls_;
    std::unique_ptr<pool::PoolManager> pools_;
    std::vector<std::unique_ptr<net::Acceptor>> acceptors_;
    std::unique_ptr<asio::local::stream_protocol::acceptor> handoff_acceptor_;
    bool handoff_pending_ = false;
    std::string unix_socket_path_;
    unsigned long unix_socket_inode_ = 0;
    std::unordered_map<uint64_t, ClientSession*> clients_;  // by cancel key (CancelKey::packed)
    PeerCancels peer_cancels_;
    ClientCaps client_caps_;
    std::map<std::string, std::string> secrets_;
    std::shared_ptr<const auth::AuthFiles> auth_files_ = std::make_shared<const auth::AuthFiles>();
    std::map<std::string, std::pair<std::string, protocol::pg::ScramSecret>> scram_cache_;
    std::mt19937_64 rng_;
    uint64_t next_client_id_ = 0;
    bool shutting_down_ = false;
    ShutdownMode shutdown_mode_ = ShutdownMode::kNone;
    bool stopped_ = false;
    bool socket_activated_ = false;
    bool stopping_notified_ = false;
    LifecycleHooks hooks_;
    std::set<std::string> paused_;  // "" = all databases
    std::set<std::string> disabled_;
    std::unique_ptr<AdminService> admin_;
    std::chrono::steady_clock::time_point last_stats_roll_ = std::chrono::steady_clock::now();
    std::chrono::steady_clock::time_point last_autodb_check_{};
    std::map<std::pair<std::string, std::string>, std::chrono::steady_clock::time_point> autodb_unused_since_;
};

}  // namespace poolguard::session
