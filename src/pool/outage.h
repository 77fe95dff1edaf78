// Owns what counts as a database outage (issue 15: restart without errors): a server login that failed
// because the database cannot be reached or is restarting — refused, reset or closed during login, 57P03
// (starting up / shutting down / in recovery), 57P01/57P02 (terminated by a shutdown) — as opposed to a login
// the database refused for a reason that waiting will not fix (password, unknown database, 53300, a server
// that accepted TCP and never answered). During an outage clients wait (query_wait_timeout) and the pool
// retries one login at a time with a short backoff. Sans I/O.
#pragma once

#include <algorithm>
#include <chrono>
#include <string_view>

#include "common/error.h"

namespace poolguard::pool {

inline bool is_outage_error(const Error& e) {
    if (e.sqlstate == "57P03" || e.sqlstate == sqlstate::kAdminShutdown || e.sqlstate == "57P02") return true;
    if (e.sqlstate != sqlstate::kConnectionFailure) return false;
    const std::string_view m = e.message;
    return m.starts_with("could not connect to server") || m.starts_with("server closed the connection") ||
           m.starts_with("could not send");
}

// The wait before login attempt `attempt` (1 = the first retry) during an outage: 25 ms doubling to 200 ms,
// so a database that accepts logins again is used within about 0.2 s, with at most 5 logins a second.
inline std::chrono::milliseconds outage_retry_delay(int attempt) {
    const int shift = std::clamp(attempt - 1, 0, 3);
    return std::chrono::milliseconds(25 << shift);
}

}  // namespace poolguard::pool
