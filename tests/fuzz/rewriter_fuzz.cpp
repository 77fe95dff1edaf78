// Owns the fuzz target of the named prepared statement rewriter: a client's Parse/Bind/Describe/Close (and
// other messages) in any order and form, with server replies interleaved, against a small server cache.
#include "fuzz_input.h"
#include "protocol/pg/prepared_statements.h"

using namespace poolguard::protocol::pg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
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
    return 0;
}
