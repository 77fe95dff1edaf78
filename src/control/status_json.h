// Owns the JSON of /api/v1/status (pools, the database view with its per-group counts, every detector's
// finding) and the grouping of a database's sessions by application, user and address that the detectors
// and that JSON share.
#pragma once

#include <nlohmann/json.hpp>

#include "control/state.h"
#include "dbview/snapshot.h"
#include "detect/finding.h"

namespace poolguard::control {

// Sessions of the database by application, user and client address (system and replication left out).
detect::GroupCounts group_sessions(const dbview::Snapshot& snap);

nlohmann::json status_json(const ControlStatus& st);

}  // namespace poolguard::control
