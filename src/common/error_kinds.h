// Owns the one table that decides which SQLSTATE each kind of error poolguard raises itself carries, so a
// call site names what happened (a protocol violation, an admin kill, a timeout) and never picks a code.
#pragma once

#include "common/error.h"

namespace poolguard {

enum class ErrorKind {
    kProtocolViolation,       // a peer broke the v3 protocol (malformed message, bad length, bad type)
    kAdminKill,               // KILL / KILL_CLIENT / a responder ended the client
    kShutdown,                // poolguard is shutting down
    kLoginTimeout,            // client_login_timeout
    kClientIdleTimeout,       // client_idle_timeout
    kIdleTransactionTimeout,  // idle_transaction_timeout
    kQueryTimeout,            // query_timeout
    kTransactionTimeout,      // transaction_timeout (PgBouncer 1.25 sends 08P01)
    kClientStalled,           // the client stopped in the middle of a message while holding a server
    kTooManyConnections,      // max_client_conn, query_wait_timeout, an exhausted database
    kServerLost,              // the server died under the client
    kProgramLimit,            // a message over one of poolguard's size bounds (admin console query)
};

// The SQLSTATE a client sees for `kind`. PgBouncer's codes where PgBouncer has one.
constexpr const char* sqlstate_of(ErrorKind kind) {
    switch (kind) {
        case ErrorKind::kProtocolViolation:
        case ErrorKind::kLoginTimeout:
        case ErrorKind::kTransactionTimeout:
        case ErrorKind::kClientStalled:
            return sqlstate::kProtocolViolation;
        case ErrorKind::kAdminKill:
        case ErrorKind::kShutdown:
            return sqlstate::kAdminShutdown;
        case ErrorKind::kClientIdleTimeout:
            return "57P05";
        case ErrorKind::kIdleTransactionTimeout:
            return "25P03";
        case ErrorKind::kQueryTimeout:
            return sqlstate::kQueryCanceled;
        case ErrorKind::kTooManyConnections:
            return sqlstate::kTooManyConnections;
        case ErrorKind::kServerLost:
            return sqlstate::kConnectionFailure;
        case ErrorKind::kProgramLimit:
            return "54000";
    }
    return sqlstate::kInternalError;
}

}  // namespace poolguard
