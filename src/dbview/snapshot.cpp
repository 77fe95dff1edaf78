// Owns the derived figures of a database Snapshot (used / usable slots, counts by state).
#include "dbview/snapshot.h"

namespace poolguard::dbview {

int Snapshot::used() const {
    int n = 0;
    for (const auto& s : sessions)
        if (!s.system && !s.replication) ++n;
    return n;
}

double Snapshot::utilization() const {
    const int u = usable();
    return u > 0 ? static_cast<double>(used()) / u : 0.0;
}

std::map<std::string, int> Snapshot::count_by_state() const {
    std::map<std::string, int> out;
    for (const auto& s : sessions)
        if (!s.system && !s.replication) ++out[to_string(s.state)];
    return out;
}

std::string to_string(SessionState s) {
    switch (s) {
        case SessionState::active: return "active";
        case SessionState::idle: return "idle";
        case SessionState::idle_in_transaction: return "idle in transaction";
        case SessionState::idle_in_transaction_aborted: return "idle in transaction (aborted)";
        case SessionState::fastpath: return "fastpath function call";
        case SessionState::disabled: return "disabled";
        case SessionState::other: return "other";
    }
    return "other";
}

std::string to_string(Engine e) { return e == Engine::postgres ? "postgresql" : "mysql"; }

}  // namespace poolguard::dbview
