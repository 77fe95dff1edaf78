// Owns the fuzz target of the admin console's command parser (a Query's text from an admin or stats user).
#include <string_view>

#include "admin/admin_command.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view sql(reinterpret_cast<const char*>(data), size);
    for (auto statement : poolguard::admin::split_statements(sql))
        (void)poolguard::admin::parse_command(statement);
    (void)poolguard::admin::excerpt(sql, 40);
    return 0;
}
