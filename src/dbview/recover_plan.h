// Owns the recovery planner: which sessions to cancel or terminate, given a Snapshot and a policy. Sans-I/O
// and engine-neutral; used by `poolguard recover` and by the control plane's responders.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dbview/snapshot.h"

namespace poolguard::dbview {

struct RecoverPolicy {
    std::optional<double> kill_idle_after_s;    // terminate sessions idle longer than this
    std::optional<double> cancel_long_after_s;  // cancel queries running longer than this
    std::optional<double>
        terminate_long_after_s;               // terminate sessions whose query runs longer (wins over cancel)
    std::optional<double> kill_leak_after_s;  // terminate sessions idle in transaction longer than this
    std::vector<std::string> protect_users;   // shell globs (fnmatch) on the user name
    std::vector<std::string> protect_apps;    // shell globs on application_name
};

enum class ActionKind { cancel, terminate };
std::string to_string(ActionKind kind);

struct RecoverAction {
    ActionKind kind = ActionKind::cancel;
    int64_t session_id = 0;
    std::string reason;  // "idle for 6m12s (limit 5m00s)"
    std::string user;
    std::string application;
    std::string client_addr;
    std::string query;  // for display, already truncated by the sampler
};

// A session a rule matched but a protection kept: reported so the operator sees what was spared and why.
struct SparedSession {
    int64_t session_id = 0;
    std::string protection;  // "own connection", "superuser", "protected user 'batch*'", ...
    std::string would_have;  // the reason the rule gave
    std::string user;
    std::string application;
};

struct RecoverPlan {
    std::vector<RecoverAction> actions;  // at most one per session, ordered by session id
    std::vector<SparedSession> spared;
};

// Never acts on: the sampler's own connection, superusers, replication and system sessions, users and
// applications matching the protect globs. Ages are compared with "longer than" (strictly greater).
// Idle sessions use state_age_s, running queries query_age_s, idle-in-transaction sessions state_age_s (how
// long the transaction has sat idle; "aborted" ones count too). A rule whose limit is unset does nothing.
RecoverPlan plan_recovery(const Snapshot& snapshot, const RecoverPolicy& policy);

// True when `text` matches the shell glob (`*`, `?`, `[...]`).
bool glob_match(const std::string& pattern, const std::string& text);

}  // namespace poolguard::dbview
