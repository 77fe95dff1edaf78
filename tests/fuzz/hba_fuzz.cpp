// Owns the fuzz target of the auth_hba_file and auth_ident_file parsers and the HBA matcher: rule text from
// the input (an `@file` include returns a second piece of the input), then a login built from the rest
// matched against it.
#include <string>

#include "auth/hba.h"
#include "fuzz_input.h"

using namespace poolguard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const uint8_t flags = in.byte();
    const std::string hba_text(in.until_sep());
    const std::string include_text(in.until_sep());
    const std::string ident_text(in.until_sep());
    const std::string address(in.until_sep());
    const std::string database(in.until_sep());
    const std::string user(in.rest());

    int includes = 0;
    auto parsed = auth::parse_hba(hba_text, [&](const std::string&) -> Result<std::string> {
        if (++includes > 4 || (flags & 0x80)) return fail("include not readable");
        return include_text;
    });
    auto ident = auth::parse_ident(ident_text);

    auth::HbaLogin login;
    login.unix_socket = flags & 0x01;
    login.tls = flags & 0x02;
    login.physical_replication = flags & 0x04;
    if (!login.unix_socket) login.address = auth::parse_ip(address);
    login.database = database;
    login.user = user;
    if (const auth::HbaRule* rule = auth::match_hba(parsed.rules, login)) {
        (void)auth::to_string(rule->method);
        (void)auth::ident_allows(ident.maps, rule->map, user, database);
    }
    return 0;
}
