// Owns the fuzz target of the SCRAM client side: server-first and server-final messages from a server (a
// backend's long nonce, a huge iteration count, bad base64).
#include "fuzz_input.h"
#include "protocol/pg/messages.h"
#include "protocol/pg/scram.h"

using namespace poolguard::protocol::pg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const auto server_first = in.until_sep();
    const auto server_final = in.until_sep();
    // A server with a huge iteration count would make each run slow, not crash: cap what the target feeds.
    if (server_first.find("i=") != std::string_view::npos && server_first.size() > 0) {
        const auto at = server_first.find("i=");
        if (server_first.substr(at + 2).size() > 4) return 0;
    }
    ScramClient client("pencil", "clientnonce");
    (void)client.client_first_message();
    auto final_msg = client.handle_server_first(server_first);
    if (final_msg) (void)client.verify_server_final(server_final);
    (void)parse_auth_request(in.rest());
    (void)parse_sasl_mechanisms(in.rest());
    return 0;
}
