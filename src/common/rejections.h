// Owns the reasons a connection is refused before login (issue 15): the names logs and the
// poolguard_client_rejections_total metric use.
#pragma once

#include <cstddef>

namespace poolguard {

enum class Rejection : unsigned {
    kBadStartupPacket,     // a bad length or layout of the startup packet
    kUnsupportedProtocol,  // a protocol version other than 3.x
    kBadCancel,            // a CancelRequest with a malformed packet or a key nobody holds
    kLoginTimeout,         // client_login_timeout passed before the login finished
    kMaxClientConn,        // max_client_conn reached (a connection flood)
    kCount,
};
inline constexpr size_t kRejectionCount = static_cast<size_t>(Rejection::kCount);

constexpr const char* to_string(Rejection r) {
    switch (r) {
        case Rejection::kBadStartupPacket:
            return "bad_startup_packet";
        case Rejection::kUnsupportedProtocol:
            return "unsupported_protocol";
        case Rejection::kBadCancel:
            return "bad_cancel";
        case Rejection::kLoginTimeout:
            return "login_timeout";
        case Rejection::kMaxClientConn:
            return "max_client_conn";
        case Rejection::kCount:
            break;
    }
    return "unknown";
}

}  // namespace poolguard
