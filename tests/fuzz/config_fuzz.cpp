// Owns the fuzz target of the configuration text parsers: pgbouncer.ini lines (no %include of real files:
// the name is not one), [databases] connection strings, single values and the auth_file format.
#include <string>

#include "config/connstring.h"
#include "config/ini_parser.h"
#include "config/value_parser.h"
#include "fuzz_input.h"
#include "protocol/pg/userlist.h"

using namespace poolguard;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const uint8_t which = in.byte();
    const std::string text(in.rest());
    switch (which % 4) {
        case 0:
            (void)config::parse_ini_text(text, "/nonexistent-fuzz/pgbouncer.ini",
                                         [](const config::IniEntry& e) {
                                             (void)config::parse_connstring(e.value);
                                             return Status{};
                                         });
            break;
        case 1:
            (void)config::parse_connstring(text);
            break;
        case 2:
            (void)config::parse_integer(text, -1000, 1000000);
            (void)config::parse_real(text, 0, 100);
            (void)config::parse_bool(text);
            (void)config::parse_duration(text);
            (void)config::parse_octal_mode(text);
            (void)config::parse_list(text);
            (void)config::parse_pool_mode(text);
            (void)config::parse_auth_type(text);
            (void)config::parse_host_port(text);
            break;
        case 3:
            (void)protocol::pg::parse_userlist(text, "userlist.txt");
            break;
    }
    return 0;
}
