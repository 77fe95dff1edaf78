// Owns the human durations of the database-view tools: parsing "90s", "5m", "1h30m", "250ms" and printing
// ages compactly ("6m12s").
#pragma once

#include <string>
#include <string_view>

#include "common/error.h"

namespace poolguard::dbview {

// "500ms", "90s", "5m", "1h", "1h30m", "2d", or a bare number of seconds. Negative or empty: an Error.
Result<double> parse_duration_seconds(std::string_view text);

// 0.4 → "0.4s", 75 → "1m15s", 3725 → "1h02m", 90000 → "1d01h".
std::string format_age(double seconds);

}  // namespace poolguard::dbview
