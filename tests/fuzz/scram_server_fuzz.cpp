// Owns the fuzz target of the SCRAM server side: client-first and client-final messages from a client.
#include "fuzz_input.h"
#include "protocol/pg/messages.h"
#include "protocol/pg/scram.h"

using namespace poolguard::protocol::pg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const ScramSecret secret = make_scram_secret("pencil", "0123456789abcdef", 16);
    fuzz::Input in(data, size);
    const auto first = in.until_sep();
    const auto final_msg = in.until_sep();
    // The SASLInitialResponse framing first, as the session parses it.
    (void)parse_sasl_initial(first);
    ScramServer server(secret, "servernonce");
    auto sf = server.handle_client_first(first);
    if (sf) (void)server.handle_client_final(final_msg);
    (void)server.client_key();
    (void)parse_scram_secret(in.rest());
    (void)base64_decode(in.rest());
    return 0;
}
