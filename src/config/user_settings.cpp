// Owns the settings of one [users] line and of one [peers] line (see user_settings.h).
#include "config/user_settings.h"

#include <climits>

#include "config/connstring.h"
#include "config/value_parser.h"

namespace poolguard::config {

std::optional<UserSettingError> apply_user_setting(UserConfig& user, std::string_view key,
                                                   std::string_view value) {
    auto invalid = [](std::string reason) { return UserSettingError{false, std::move(reason)}; };
    if (key == "pool_mode") {
        auto mode = parse_pool_mode(value);
        if (!mode) return invalid(mode.error());
        user.pool_mode = *mode;
        return std::nullopt;
    }
    if (key == "pool_size" || key == "reserve_pool_size" || key == "max_user_connections" ||
        key == "max_user_client_connections") {
        auto count = parse_integer(value, 0, INT_MAX);
        if (!count) return invalid(count.error());
        const int n = static_cast<int>(*count);
        if (key == "pool_size") user.pool_size = n;
        if (key == "reserve_pool_size") user.reserve_pool_size = n;
        if (key == "max_user_connections") user.max_user_connections = n;
        if (key == "max_user_client_connections") user.max_user_client_connections = n;
        return std::nullopt;
    }
    std::optional<Micros>* timeout = key == "query_timeout"              ? &user.query_timeout
                                     : key == "idle_transaction_timeout" ? &user.idle_transaction_timeout
                                     : key == "transaction_timeout"      ? &user.transaction_timeout
                                     : key == "client_idle_timeout"      ? &user.client_idle_timeout
                                                                         : nullptr;
    if (timeout == nullptr) return UserSettingError{true, {}};
    auto duration = parse_duration(value);
    if (!duration) return invalid(duration.error());
    *timeout = *duration;
    return std::nullopt;
}

std::expected<PeerConfig, std::string> parse_peer(std::string_view key, std::string_view value) {
    PeerConfig peer;
    auto id = parse_integer(key, 1, 16383);
    if (!id)
        return std::unexpected("invalid peer id '" + std::string(key) + "' in [peers]: " + id.error() +
                               " (1 to 16383)");
    peer.peer_id = static_cast<int>(*id);
    auto pairs = parse_connstring(value);
    if (!pairs)
        return std::unexpected("invalid connection string for peer " + std::string(key) + ": " +
                               pairs.error());
    for (const ConnstringPair& pair : *pairs) {
        auto bad = [&](const std::string& why) {
            return std::unexpected("invalid value '" + pair.value + "' for " + pair.key + " in peer " +
                                   std::string(key) + ": " + why);
        };
        if (pair.key == "host") {
            peer.host = pair.value;
        } else if (pair.key == "port") {
            auto port = parse_integer(pair.value, 1, 65535);
            if (!port) return bad(port.error());
            peer.port = static_cast<int>(*port);
        } else if (pair.key == "pool_size") {
            auto size = parse_integer(pair.value, 0, INT_MAX);
            if (!size) return bad(size.error());
            peer.pool_size = static_cast<int>(*size);
        } else {
            return std::unexpected("unknown parameter '" + pair.key + "' for peer " + std::string(key) +
                                   " (expected host, port or pool_size)");
        }
    }
    return peer;
}

}  // namespace poolguard::config
