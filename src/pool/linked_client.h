// Owns LinkedClient, the narrow view a server connection has of the client it is serving.
#pragma once

#include <memory>
#include <string>

#include "net/stream.h"
#include "net/write_gate.h"
#include "protocol/pg/messages.h"
#include "protocol/pg/prepared_statements.h"

namespace poolguard::pool {

// A server connection linked to a client relays the server's bytes into this client's socket and reports
// events back through these calls. The session layer implements it; the pool never sees session internals.
class LinkedClient {
  public:
    virtual ~LinkedClient() = default;
    // A strong reference that keeps this client, its socket and its write gate alive while the server's
    // relay is suspended on them (a client may end, and be freed, during that wait); null when the client is
    // already being destroyed. Taken only before the relay suspends, never per message.
    virtual std::shared_ptr<LinkedClient> keep_alive() = 0;
    virtual net::Stream& client_socket() = 0;
    // Taken around every write to client_socket(): poolguard's own answers (prepared-statement fakes) and
    // the relayed server bytes must never interleave.
    virtual net::WriteGate& client_write_gate() = 0;
    // The client's named prepared statements (transaction/statement pooling with max_prepared_statements).
    virtual protocol::pg::ClientStatements* client_statements() = 0;
    // The server reported a new value of a parameter the client tracks (after a SET by the client).
    virtual void on_server_parameter(const std::string& name, const std::string& value) = 0;
    // The server finished the client's work and went back to the pool (transaction/statement boundary).
    virtual void on_server_released() = 0;
    // The server connection failed while serving this client; the client must be told and closed.
    virtual void on_server_lost(const protocol::pg::ErrorFields& error) = 0;
    // Statement mode: the client opened a transaction block; it gets `error` and is closed.
    virtual void on_protocol_refusal(const protocol::pg::ErrorFields& error) = 0;
    // Bytes relayed to the client, for statistics.
    virtual void on_bytes_to_client(size_t n) = 0;
};

}  // namespace poolguard::pool
