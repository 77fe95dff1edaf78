// Owns the Config::effective_* lookups of PgBouncer 1.19-1.25's per-database and per-user settings: which
// of [users], [databases] and [pgbouncer] decides a value for one (database, user). A [users] timeout of 0
// means "not set" (the global value applies), as in PgBouncer 1.25.2 (checked).
#include "config/config.h"

namespace poolguard::config {

int Config::effective_pool_size(const DatabaseConfig& db, const UserConfig* user) const {
    if (user != nullptr && user->pool_size) return *user->pool_size;
    return effective_pool_size(db);
}

int Config::effective_reserve_pool_size(const DatabaseConfig& db, const UserConfig* user) const {
    if (user != nullptr && user->reserve_pool_size) return *user->reserve_pool_size;
    return effective_reserve_pool_size(db);
}

Micros Config::effective_server_lifetime(const DatabaseConfig& db) const {
    return db.server_lifetime.value_or(server_lifetime);
}

int Config::effective_max_db_client_connections(const DatabaseConfig& db) const {
    return db.max_db_client_connections > 0 ? db.max_db_client_connections : max_db_client_connections;
}

int Config::effective_max_user_client_connections(const UserConfig* user) const {
    return user != nullptr && user->max_user_client_connections > 0 ? user->max_user_client_connections
                                                                    : max_user_client_connections;
}

Micros Config::effective_query_timeout(const UserConfig* user) const {
    return user != nullptr && user->query_timeout.value_or(Micros{0}).count() > 0 ? *user->query_timeout
                                                                                  : query_timeout;
}

Micros Config::effective_idle_transaction_timeout(const UserConfig* user) const {
    return user != nullptr && user->idle_transaction_timeout.value_or(Micros{0}).count() > 0
               ? *user->idle_transaction_timeout
               : idle_transaction_timeout;
}

Micros Config::effective_transaction_timeout(const UserConfig* user) const {
    return user != nullptr && user->transaction_timeout.value_or(Micros{0}).count() > 0
               ? *user->transaction_timeout
               : transaction_timeout;
}

Micros Config::effective_client_idle_timeout(const UserConfig* user) const {
    return user != nullptr && user->client_idle_timeout.value_or(Micros{0}).count() > 0
               ? *user->client_idle_timeout
               : client_idle_timeout;
}

}  // namespace poolguard::config
