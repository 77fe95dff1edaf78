// Owns the fuzz target of the backend message parsers the server side uses (ErrorResponse without fields or
// SQLSTATE, ParameterStatus, BackendKeyData, authentication requests, SASL mechanism lists) and of the
// frontend message parsers the login uses.
#include "fuzz_input.h"
#include "protocol/pg/messages.h"

using namespace poolguard::protocol::pg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const auto body = in.rest();
    const auto e = parse_error_fields(body);
    std::string out;
    append_error(out, e);  // what the relay builds from a server's error
    (void)parse_parameter_status(body);
    (void)parse_backend_key(body);
    if (auto auth = parse_auth_request(body)) (void)parse_sasl_mechanisms(auth->second);
    (void)parse_password(body);
    (void)parse_sasl_initial(body);
    (void)parse_query(body);
    (void)quote_literal(body);
    return 0;
}
