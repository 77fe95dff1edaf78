// Owns PoolManager: every Pool by (database, user), the database- and user-wide connection limits that
// span pools, the periodic janitor, and applying a reloaded configuration to live pools.
#pragma once

#include <asio.hpp>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "config/config.h"
#include "pool/pool.h"

namespace poolguard::pool {

class PoolManager {
  public:
    PoolManager(asio::any_io_executor executor, std::shared_ptr<const config::Config> config);
    ~PoolManager();

    // The pool for a client of `database` (a [databases] entry name) logging in as `user`.
    // `server_secret` is the password poolguard will use to log in to the server when the database entry
    // does not force a user with its own password. `scram_keys`, from a client's SCRAM login, let poolguard
    // log in with a SCRAM verifier as secret; once known they are kept while the secret stays the same.
    Pool& get_or_create(const config::DatabaseConfig& db, const std::string& user,
                        const std::string& server_secret,
                        const std::optional<ScramPassThrough>& scram_keys = std::nullopt);

    // A replication connection's pool (replication = "true" or "database"): session mode, a server of its own
    // per client, opened with the client's `startup_params` and closed when the client leaves; its servers
    // count towards max_db_connections and max_user_connections but not towards pool_size, as in PgBouncer
    // 1.23+. One pool per distinct (database, user, replication, startup parameters).
    Pool& get_replication_pool(const config::DatabaseConfig& db, const std::string& user,
                               const std::string& server_secret, const std::string& replication,
                               const std::vector<std::pair<std::string, std::string>>& startup_params,
                               const std::optional<ScramPassThrough>& scram_keys = std::nullopt);
    const auto& replication_pools() const { return replication_pools_; }

    // Connections (all states) to one database / as one server user across pools, for the shared limits.
    int database_server_count(const std::string& database) const;
    int user_server_count(const std::string& user) const;
    // A server closed: pools held back by a database/user-wide limit may now open one.
    void on_slot_freed(const std::string& database, const std::string& user);
    // Closes an idle server in another pool of the same database (or user) to make room; false if none.
    bool evict_idle_for(const Pool& requester, bool same_database);

    // The circuit breaker of `database` (created closed on first use; one per [databases] entry).
    CircuitBreaker& breaker(const std::string& database);
    const std::map<std::string, CircuitBreaker>& breakers() const { return breakers_; }

    // The database view (control plane, posted to the io thread) sampled the instance host:port: `usable`
    // slots, `backend_pids` the client connections that count against them. The ones that are not this
    // pooler's servers (compared now, so servers opened since the sample are not mistaken for others) leave
    // the free slots, split among the adaptive pools there as their budget until `until`.
    void set_instance_budget(const std::string& host, int port, int usable,
                             const std::vector<int64_t>& backend_pids, Clock::time_point until);

    void reload(std::shared_ptr<const config::Config> config);
    // The server-side TLS context for new server connections (Proxy builds it; set before reload). A change
    // of the server_tls_* settings at reload closes idle servers, busy ones when released (reconnect_all).
    void set_server_tls(net::TlsContextPtr tls) { server_tls_ = std::move(tls); }
    // Removes the pool of `key` (autodb_idle_timeout): closes its servers; true once it is gone (no server
    // left), false while servers are still closing (call again later). The caller makes sure no client
    // holds the pool.
    bool drop_pool(const std::pair<std::string, std::string>& key, const std::string& reason);
    void start_janitor();
    void stop();

    uint64_t next_server_id() { return ++server_ids_; }
    const config::Config& config() const { return *config_; }
    bool shutting_down() const { return shutting_down_; }
    void set_shutting_down() { shutting_down_ = true; }
    const std::map<std::pair<std::string, std::string>, std::unique_ptr<Pool>>& pools() const {
        return pools_;
    }

  private:
    struct Credentials {
        std::string secret;
        std::optional<ScramPassThrough> scram_keys;
        bool operator==(const Credentials&) const = default;
    };
    PoolSettings settings_for(const config::DatabaseConfig& db, const std::string& user,
                              const Credentials& credentials) const;
    PoolSettings replication_settings(const config::DatabaseConfig& db, const std::string& user,
                                      const Credentials& credentials, const std::string& key) const;
    asio::awaitable<void> janitor_loop();
    BreakerSettings breaker_settings() const;

    asio::any_io_executor executor_;
    net::TlsContextPtr server_tls_;
    std::string server_tls_settings_;  // net::server_tls_fingerprint of the configuration in force
    std::shared_ptr<const config::Config> config_;
    // By database; nodes are stable: pools keep pointers (declared before pools_ so it outlives them).
    std::map<std::string, CircuitBreaker> breakers_;
    std::map<std::pair<std::string, std::string>, std::unique_ptr<Pool>> pools_;
    std::map<std::pair<std::string, std::string>, Credentials> credentials_;  // pool key -> server login
    // Replication pools by (database, user, replication value + '\n' + startup parameters), with their
    // server secret.
    struct ReplicationPool {
        std::unique_ptr<Pool> pool;
        Credentials credentials;
    };
    std::map<std::tuple<std::string, std::string, std::string>, ReplicationPool> replication_pools_;
    uint64_t server_ids_ = 0;
    bool shutting_down_ = false;
    bool stopped_ = false;
    asio::steady_timer janitor_timer_;
};

}  // namespace poolguard::pool
