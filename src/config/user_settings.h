// Owns the settings of one [users] line and of one [peers] line (PgBouncer 1.25: pool_size,
// reserve_pool_size, pool_mode, max_user_connections, max_user_client_connections and the per-user timeouts).
#pragma once

#include <expected>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"

namespace poolguard::config {

inline constexpr const char* kUserSettingNames =
    "pool_size, reserve_pool_size, pool_mode, max_user_connections, max_user_client_connections, "
    "query_timeout, idle_transaction_timeout, transaction_timeout or client_idle_timeout";

struct UserSettingError {
    bool unknown = false;  // not a [users] key at all
    std::string reason;    // why the value is invalid
};

// Applies `key = value` to `user`; nullopt when it was applied.
std::optional<UserSettingError> apply_user_setting(UserConfig& user, std::string_view key,
                                                   std::string_view value);

// Parses one [peers] line: `key` the peer id, `value` its connection string (host, port, pool_size).
// The error completes "<file>:<line>: ".
std::expected<PeerConfig, std::string> parse_peer(std::string_view key, std::string_view value);

}  // namespace poolguard::config
