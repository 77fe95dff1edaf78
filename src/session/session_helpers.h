// Owns the small helpers both halves of ClientSession share (client_login.cpp: startup and authentication;
// client_session.cpp: relay and lifecycle): FATAL errors, tracked-parameter lookup, ASCII lowercasing, and
// the size limit of one authentication message.
#pragma once

#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>

#include "common/error_kinds.h"
#include "protocol/pg/messages.h"
#include "session/tracked_params.h"

namespace poolguard::session::detail {

inline constexpr size_t kMaxAuthMessage = 64 * 1024;
// One admin console message (a query): longer ones get 54000 (session/admin_input.cpp).
inline constexpr size_t kMaxAdminMessage = 1024 * 1024;

// The tracked session parameter named `lower`, or nullptr.
inline const TrackedParam* tracked(std::string_view lower) {
    const int i = tracked_index(lower);
    return i < 0 ? nullptr : &kTrackedParams[i];
}

// The same, when `cfg` tracks it (built-ins, and track_extra_parameters).
inline const TrackedParam* tracked(std::string_view lower, const config::Config& cfg) {
    return config::tracks_parameter(cfg, lower) ? tracked(lower) : nullptr;
}

inline std::string lowercase(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

inline protocol::pg::ErrorFields fatal(std::string_view state, std::string message) {
    return protocol::pg::ErrorFields{"FATAL", std::string(state), std::move(message), {}, {}};
}
// The SQLSTATE comes from the one table in common/error_kinds.h.
inline protocol::pg::ErrorFields fatal(ErrorKind kind, std::string message) {
    return fatal(sqlstate_of(kind), std::move(message));
}

}  // namespace poolguard::session::detail
