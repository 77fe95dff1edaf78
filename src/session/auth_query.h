// Owns auth_query: looking up a client's password secret (md5 or SCRAM verifier) in the database itself,
// through a pooled server connection of the auth_user, for users that are not in the auth_file.
#pragma once

#include <asio.hpp>
#include <optional>
#include <string>

#include "common/error.h"
#include "config/config.h"

namespace poolguard::session {

class Proxy;

// Who runs the lookup for clients of `db`: its auth_user (else the global one) in its auth_dbname (else the
// global one, else `db` itself). Empty user = no lookup configured.
struct AuthQueryTarget {
    std::string auth_user;
    std::string query;  // the database's own auth_query, else the global one
    const config::DatabaseConfig* database = nullptr;
};
AuthQueryTarget auth_query_target(const config::Config& cfg, const config::DatabaseConfig& db,
                                  std::optional<config::DatabaseConfig>& storage);

// Runs `query` (empty: cfg.auth_query) with $1 = `user` on a server of the (database, auth_user) pool.
// nullopt = no such user (no row, or a NULL password). Errors (the pool cannot reach the server, the query
// fails) carry the server's SQLSTATE and message.
asio::awaitable<Result<std::optional<std::string>>> lookup_secret(Proxy& proxy,
                                                                  const config::DatabaseConfig& database,
                                                                  const std::string& auth_user,
                                                                  const std::string& user,
                                                                  const std::string& query = {});

}  // namespace poolguard::session
