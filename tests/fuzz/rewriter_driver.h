// Owns the driver of the rewriter fuzz target, shared with the unit tests that replay its corpus: one input
// carved into client messages and server replies against one client, one small server cache and its queue.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_input.h"
#include "protocol/pg/prepared_statements.h"

namespace fuzz {

// The first byte picks the server cache's capacity (1-4); then each step is an op byte and a body piece:
// op & 0x80 a server message (op & 0x40: the client is gone), else a client message.
inline void drive_rewriter(const uint8_t* data, size_t size) {
    using namespace poolguard::protocol::pg;
    Input in(data, size);
    ClientStatements client;
    ServerStatements server(1 + in.byte() % 4);
    ResponseQueue queue;
    Rewriter rewriter;
    std::string to_server, fakes;
    static const char kClientTypes[] = "PBDCESHQFd";
    static const char kServerTypes[] = "123nstTDCEZIcGHVAN";
    int steps = 0;
    while (!in.empty() && ++steps < 200) {
        const uint8_t op = in.byte();
        const auto body = in.piece(64);
        if (op & 0x80) {
            const char type = kServerTypes[op % (sizeof kServerTypes - 1)];
            if (queue.on_server_message(type, body, server, (op & 0x40) ? nullptr : &client) ==
                Disposition::kOutOfSync)
                queue.clear();
        } else {
            const char type = kClientTypes[op % (sizeof kClientTypes - 1)];
            to_server.clear();
            if (Rewriter::must_inspect(type)) {
                if (!rewriter.on_client_message(type, body, client, server, queue, to_server)) continue;
            } else {
                rewriter.on_passthrough(type, client, server, queue);
            }
        }
        fakes.clear();
        queue.append_ready_fakes(fakes);
    }
}

}  // namespace fuzz
