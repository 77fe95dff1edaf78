// Owns the `options` startup parameter's syntax, sans I/O: `-c name=value`, `-cname=value` and
// `--name=value` switches separated by whitespace, with backslash escapes, as PostgreSQL reads them.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.h"

namespace poolguard::protocol::pg {

// The (name, value) pairs of an `options` value, names as written (dashes in `--name` become
// underscores, as PostgreSQL does). Any other switch is an error (SQLSTATE 08P01, PgBouncer 1.25's text).
Result<std::vector<std::pair<std::string, std::string>>> parse_startup_options(std::string_view options);

}  // namespace poolguard::protocol::pg
