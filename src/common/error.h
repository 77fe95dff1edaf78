// Owns the error vocabulary shared by every component: Error (message + SQLSTATE) and Result<T>.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace poolguard {

// An error a peer, the network or a configuration can cause. `sqlstate` is the PostgreSQL error code a
// client should see when this error reaches it (empty when it never does).
struct Error {
    std::string message;
    std::string sqlstate;

    static Error make(std::string msg, std::string state = {}) {
        return Error{std::move(msg), std::move(state)};
    }
};

template <typename T>
using Result = std::expected<T, Error>;

using Status = std::expected<void, Error>;

inline std::unexpected<Error> fail(std::string msg, std::string sqlstate = {}) {
    return std::unexpected(Error{std::move(msg), std::move(sqlstate)});
}

// SQLSTATE codes poolguard sends itself.
namespace sqlstate {
inline constexpr const char* kProtocolViolation = "08P01";
inline constexpr const char* kConnectionFailure = "08006";
inline constexpr const char* kConnectionException = "08000";
inline constexpr const char* kTooManyConnections = "53300";
inline constexpr const char* kInvalidPassword = "28P01";
inline constexpr const char* kInvalidAuthorization = "28000";
inline constexpr const char* kInvalidCatalogName = "3D000";
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kAdminShutdown = "57P01";
inline constexpr const char* kQueryCanceled = "57014";
inline constexpr const char* kInternalError = "XX000";
inline constexpr const char* kSyntaxError = "42601";
inline constexpr const char* kInsufficientPrivilege = "42501";
}  // namespace sqlstate

}  // namespace poolguard
