// Owns PoolManager: every Pool by (database, user), the database- and user-wide connection limits that
// span pools, the periodic janitor, and applying a reloaded configuration to live pools.
#include "pool/pool_manager.h"

#include <spdlog/spdlog.h>

#include <unordered_set>

#include "config/host_list.h"

namespace poolguard::pool {

PoolManager::PoolManager(asio::any_io_executor executor, std::shared_ptr<const config::Config> config)
    : executor_(executor), config_(std::move(config)), janitor_timer_(executor) {
    server_tls_settings_ = net::server_tls_fingerprint(*config_);
}

PoolManager::~PoolManager() {
    stop();
}

namespace {

// A [databases] host list (host=a,b,c): the pool picks the entry for each new connection and a connection
// falls over to the next entries when its host does not answer. One host keeps target.host/port only.
void set_host_list(PoolSettings& s, const config::DatabaseConfig& db) {
    s.load_balance_round_robin = db.load_balance_round_robin;
    auto hosts = config::parse_host_list(db.host, db.port_list, db.port);
    if (!hosts || hosts->empty()) return;  // the loader refused invalid lists already
    if (hosts->size() == 1) {
        if (!hosts->front().host.empty()) s.target.host = hosts->front().host;
        s.target.port = hosts->front().port;
        return;
    }
    s.target.hosts = std::move(*hosts);
    s.target.host = s.target.hosts.front().host;
    s.target.port = s.target.hosts.front().port;
}

}  // namespace

PoolSettings PoolManager::settings_for(const config::DatabaseConfig& db, const std::string& user,
                                       const Credentials& credentials) const {
    const std::string& server_secret = credentials.secret;
    const auto& c = *config_;
    const config::UserConfig* user_cfg = c.find_user(user);
    PoolSettings s;
    s.mode = c.effective_pool_mode(db, user_cfg);
    s.pool_size = c.effective_pool_size(db, user_cfg);
    s.min_pool_size = c.effective_min_pool_size(db);
    s.reserve_pool_size = c.effective_reserve_pool_size(db, user_cfg);
    s.reserve_pool_timeout = c.reserve_pool_timeout;
    s.max_db_connections = c.effective_max_db_connections(db);
    s.max_user_connections = c.effective_max_user_connections(user_cfg);
    s.query_wait_timeout = c.query_wait_timeout;
    s.reset_query = c.server_reset_query;
    s.reset_always = c.server_reset_query_always;
    s.server_fast_close = c.server_fast_close;
    s.server_lifetime = c.effective_server_lifetime(db);
    s.server_idle_timeout = c.server_idle_timeout;
    s.server_login_retry = c.server_login_retry;
    s.query_timeout = c.effective_query_timeout(user_cfg);
    s.idle_transaction_timeout = c.effective_idle_transaction_timeout(user_cfg);
    s.transaction_timeout = c.effective_transaction_timeout(user_cfg);
    s.client_idle_timeout = c.effective_client_idle_timeout(user_cfg);
    // No host: a Unix socket in unix_socket_dir, as PgBouncer does.
    s.target.host = !db.host.empty()             ? db.host
                    : !c.unix_socket_dir.empty() ? c.unix_socket_dir
                                                 : "/var/run/postgresql";
    s.target.port = db.port;
    set_host_list(s, db);
    s.target.dbname = db.dbname.empty() ? db.name : db.dbname;
    s.target.user = db.user.empty() ? user : db.user;
    s.target.secret = !db.user.empty() && !db.password.empty() ? db.password : server_secret;
    if (db.user.empty() && !db.password.empty()) s.target.secret = db.password;
    if (s.target.secret == server_secret) s.target.scram_keys = credentials.scram_keys;
    s.target.connect_query = db.connect_query;
    s.target.tls = server_tls_;
    s.server_check_query = c.server_check_query;
    s.server_check_delay = c.server_check_delay;
    s.target.connect_timeout = config::server_connect_budget(c);
    s.cancel_timeout = config::cancel_budget(c);
    if (!db.client_encoding.empty())
        s.target.startup_params.emplace_back("client_encoding", db.client_encoding);
    if (!db.datestyle.empty()) s.target.startup_params.emplace_back("datestyle", db.datestyle);
    if (!db.timezone.empty()) s.target.startup_params.emplace_back("timezone", db.timezone);
    if (!db.application_name.empty())
        s.target.startup_params.emplace_back("application_name", db.application_name);
    s.classes = config::effective_classes(c.classes);
    s.adaptive = c.effective_adaptive_pool(db);
    s.adaptive_limit.smoothing = c.adaptive_smoothing;
    s.adaptive_limit.rtt_tolerance = c.adaptive_rtt_tolerance;
    s.adaptive_limit.long_window = c.adaptive_long_window;
    s.adaptive_limit.queue_size = c.adaptive_queue_size;
    s.adaptive_limit.error_backoff = c.adaptive_error_backoff;
    s.adaptive_window = c.adaptive_window;
    s.adaptive_window_samples = static_cast<uint64_t>(c.adaptive_window_samples);
    return s;
}

BreakerSettings PoolManager::breaker_settings() const {
    const auto& c = *config_;
    BreakerSettings b;
    b.enabled = c.breaker;
    b.wait_bound = c.breaker_wait_bound;
    b.open_time = c.breaker_open_seconds;
    b.login_failures = c.breaker_login_failures;
    return b;
}

CircuitBreaker& PoolManager::breaker(const std::string& database) {
    auto [it, inserted] = breakers_.try_emplace(database);
    if (inserted) it->second.configure(breaker_settings());
    return it->second;
}

Pool& PoolManager::get_or_create(const config::DatabaseConfig& db, const std::string& user,
                                 const std::string& server_secret,
                                 const std::optional<ScramPassThrough>& scram_keys) {
    auto key = std::make_pair(db.name, user);
    auto it = pools_.find(key);
    auto& known = credentials_[key];
    Credentials next{server_secret, scram_keys};
    if (!next.scram_keys && known.secret == server_secret) next.scram_keys = known.scram_keys;
    if (it != pools_.end()) {
        // The secret can change (auth_file edited); the next connection uses the new one.
        if (known != next) {
            known = next;
            it->second->apply_settings(settings_for(db, user, known));
        }
        return *it->second;
    }
    known = next;
    auto pool = std::make_unique<Pool>(*this, executor_, db.name, user, settings_for(db, user, known));
    auto& ref = *pool;
    pools_.emplace(key, std::move(pool));
    return ref;
}

namespace {
// The replication pool key's third part: the replication value, then name=value lines.
std::string replication_key(const std::string& replication,
                            const std::vector<std::pair<std::string, std::string>>& params) {
    std::string key = replication;
    for (const auto& [k, v] : params) {
        key += '\n';
        key += k;
        key += '=';
        key += v;
    }
    return key;
}
}  // namespace

PoolSettings PoolManager::replication_settings(const config::DatabaseConfig& db, const std::string& user,
                                               const Credentials& credentials, const std::string& key) const {
    PoolSettings s = settings_for(db, user, credentials);
    s.replication = true;
    s.mode = config::PoolMode::kSession;
    s.pool_size = 1 << 20;  // not limited by pool_size; max_db/user_connections still apply
    s.min_pool_size = 0;
    s.reserve_pool_size = 0;
    s.reset_query.clear();  // a walsender takes replication commands only; its server is never reused
    s.reset_always = false;
    s.server_check_query.clear();
    s.target.connect_query.clear();
    s.adaptive = false;
    size_t at = key.find('\n');
    s.target.startup_params.emplace_back("replication", key.substr(0, at));
    while (at != std::string::npos) {
        const size_t next = key.find('\n', at + 1);
        const std::string item =
            key.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1);
        const size_t eq = item.find('=');
        if (eq != std::string::npos) {
            const std::string name = item.substr(0, eq);
            std::erase_if(s.target.startup_params, [&](const auto& p) { return p.first == name; });
            s.target.startup_params.emplace_back(name, item.substr(eq + 1));
        }
        at = next;
    }
    return s;
}

Pool& PoolManager::get_replication_pool(
    const config::DatabaseConfig& db, const std::string& user, const std::string& server_secret,
    const std::string& replication, const std::vector<std::pair<std::string, std::string>>& startup_params,
    const std::optional<ScramPassThrough>& scram_keys) {
    auto key = std::make_tuple(db.name, user, replication_key(replication, startup_params));
    auto it = replication_pools_.find(key);
    Credentials next{server_secret, scram_keys};
    if (it != replication_pools_.end()) {
        auto& known = it->second.credentials;
        if (!next.scram_keys && known.secret == server_secret) next.scram_keys = known.scram_keys;
        if (known != next) {
            known = next;
            it->second.pool->apply_settings(replication_settings(db, user, known, std::get<2>(key)));
        }
        return *it->second.pool;
    }
    auto pool = std::make_unique<Pool>(*this, executor_, db.name, user,
                                       replication_settings(db, user, next, std::get<2>(key)));
    auto& ref = *pool;
    replication_pools_.emplace(std::move(key), ReplicationPool{std::move(pool), next});
    return ref;
}

int PoolManager::database_server_count(const std::string& database) const {
    int n = 0;
    for (const auto& [key, pool] : pools_)
        if (key.first == database) n += pool->server_count();
    for (const auto& [key, rp] : replication_pools_)
        if (std::get<0>(key) == database) n += rp.pool->server_count();
    return n;
}

int PoolManager::user_server_count(const std::string& user) const {
    int n = 0;
    for (const auto& [key, pool] : pools_)
        if (pool->settings().target.user == user) n += pool->server_count();
    for (const auto& [key, rp] : replication_pools_)
        if (rp.pool->settings().target.user == user) n += rp.pool->server_count();
    return n;
}

void PoolManager::on_slot_freed(const std::string& database, const std::string& user) {
    for (auto& [key, pool] : pools_) {
        if (!pool->has_waiters()) continue;
        if (key.first == database || pool->settings().target.user == user) pool->kick();
    }
}

bool PoolManager::evict_idle_for(const Pool& requester, bool same_database) {
    for (auto& [key, pool] : pools_) {
        if (pool.get() == &requester) continue;
        const bool match = same_database ? key.first == requester.database()
                                         : pool->settings().target.user == requester.settings().target.user;
        if (match && !pool->has_waiters() &&
            pool->evict_one_idle("closing idle connection to make room for another pool"))
            return true;
    }
    return false;
}

void PoolManager::set_instance_budget(const std::string& host, int port, int usable,
                                      const std::vector<int64_t>& backend_pids, Clock::time_point until) {
    // libpq's default socket directory is where poolguard connects when no host is configured.
    const std::string want = host.empty() ? std::string("/var/run/postgresql") : host;
    std::vector<Pool*> adaptive;
    std::unordered_set<int64_t> own;
    int held = 0;
    for (auto& [key, pool] : pools_) {
        const auto& t = pool->settings().target;
        if (t.port != port || t.host != want) continue;
        held += pool->server_count();
        pool->for_each_server([&](const ServerConnection& s) {
            if (s.backend_pid() != 0) own.insert(static_cast<int64_t>(s.backend_pid()));
        });
        if (pool->settings().adaptive) adaptive.push_back(pool.get());
    }
    if (adaptive.empty()) return;
    int others = 0;
    for (int64_t pid : backend_pids)
        others += own.contains(pid) ? 0 : 1;
    const int free_slots = usable - others;
    // What poolguard does not hold yet is shared evenly by the adaptive pools; negative headroom
    // (others took slots) takes the excess back from them evenly too.
    const int n = static_cast<int>(adaptive.size());
    const int headroom = free_slots - held;
    const int share = headroom >= 0 ? headroom / n : -((-headroom + n - 1) / n);
    for (Pool* pool : adaptive)
        pool->set_budget(pool->server_count() + share, until);
}

void PoolManager::reload(std::shared_ptr<const config::Config> config) {
    config_ = std::move(config);
    const std::string tls_settings = net::server_tls_fingerprint(*config_);
    const bool tls_changed = tls_settings != server_tls_settings_;
    server_tls_settings_ = tls_settings;
    if (tls_changed) spdlog::info("server TLS settings changed: server connections reconnect");
    for (auto& [name, b] : breakers_)
        b.configure(breaker_settings());
    for (auto& [key, pool] : pools_) {
        const auto db = config_->resolve_database(key.first);
        if (!db) {
            spdlog::warn("database {} is no longer configured; its pool keeps serving connected clients",
                         key.first);
            continue;
        }
        pool->apply_settings(settings_for(*db, key.second, credentials_[key]));
        if (tls_changed) pool->reconnect_all();
    }
    for (auto& [key, rp] : replication_pools_)
        if (const auto db = config_->resolve_database(std::get<0>(key)))
            rp.pool->apply_settings(
                replication_settings(*db, std::get<1>(key), rp.credentials, std::get<2>(key)));
}

bool PoolManager::drop_pool(const std::pair<std::string, std::string>& key, const std::string& reason) {
    auto it = pools_.find(key);
    if (it == pools_.end()) return true;
    if (it->second->server_count() > 0) {
        it->second->close_all(reason);
        if (it->second->server_count() > 0) return false;
    }
    pools_.erase(it);
    credentials_.erase(key);
    return true;
}

void PoolManager::start_janitor() {
    asio::co_spawn(executor_, janitor_loop(), net::LogIfThrown{"pool janitor"});
}

void PoolManager::stop() {
    stopped_ = true;
    janitor_timer_.cancel();
}

asio::awaitable<void> PoolManager::janitor_loop() {
    while (!stopped_) {
        janitor_timer_.expires_after(std::chrono::milliseconds(250));
        co_await janitor_timer_.async_wait(net::use_nothrow);
        if (stopped_) co_return;
        for (auto& [key, pool] : pools_)
            pool->tick();
        for (auto& [key, rp] : replication_pools_)
            rp.pool->tick();
    }
}

}  // namespace poolguard::pool
