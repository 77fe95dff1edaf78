// Owns protocol version negotiation at startup (issue 15): poolguard speaks protocol 3.0; a client asking for
// 3.x (x > 0, e.g. PostgreSQL 18's 3.2) or sending `_pq_.` protocol options gets NegotiateProtocolVersion
// and continues in 3.0, as a PostgreSQL server older than its request would answer. Sans I/O.
#pragma once

#include <string>

#include "protocol/pg/messages.h"

namespace poolguard::protocol::pg {

inline constexpr uint32_t kNewestMinorVersion = 0;  // poolguard serves 3.0

// Removes the `_pq_.` options from `sp.params` and returns the NegotiateProtocolVersion message ('v': the
// newest minor version served, then the names of the options not recognized) the client is owed; empty
// when it asked for 3.0 without protocol options.
std::string negotiate_protocol(StartupPacket& sp);

}  // namespace poolguard::protocol::pg
