// Owns the 3 AM error messages of the ops commands: a sampler Error (SQLSTATE / MySQL errno) becomes one
// line saying what happened and one saying what to do.
#pragma once

#include <string>

#include "common/error.h"
#include "dbview/dsn.h"

namespace poolguard::ops {

// "poolguard: <what happened>\n  what to do: <advice>\n". `dsn` may be null (the DSN did not parse).
std::string explain_error(const Error& error, const dbview::Dsn* dsn);

}  // namespace poolguard::ops
