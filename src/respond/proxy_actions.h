// Owns the responders' io-thread side: what poolguard itself holds (its server connections with their
// backend pids, pool sizes and linked clients, copied by the control plane's publisher) and carrying out
// the decisions only the pooler can: closing one of its own idle servers beyond min_pool_size, and ending a
// client with an error that says why (its server is rolled back and reused). Call on the io thread only.
#pragma once

#include <string>
#include <vector>

#include "respond/responder.h"

namespace poolguard::session {
class Proxy;
}

namespace poolguard::respond {

std::vector<PooledServer> collect_pooled_servers(session::Proxy& proxy);

// What the io thread did with a decision: acted, or left things alone because they moved on since the
// snapshot the decision was made from (detail says which).
struct IoActionResult {
    bool acted = false;
    std::string detail;
};

// Carries out a close_pool_server or end_client decision.
IoActionResult apply_on_io_thread(session::Proxy& proxy, const Decision& decision);

}  // namespace poolguard::respond
