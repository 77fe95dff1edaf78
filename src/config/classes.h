// Owns the [classes] section's model: one priority class per line (application_name/user globs, priority,
// max_share), parsing and validating a line, glob matching, and picking the class of a client.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace poolguard::config {

// NAME = application_name=GLOB, user=GLOB, priority=N, max_share=PERCENT
struct ClassConfig {
    std::string name;
    std::string application_name = "*";  // glob: '*' any run of characters, '?' one character
    std::string user = "*";
    int priority = 0;     // 0 is served first
    int max_share = 100;  // % of a pool's server connections the class may hold at once
    int line = 0;         // where it was defined, for messages
};

inline constexpr std::string_view kDefaultClass = "default";

// Shell glob (fnmatch): '*' any run (also empty), '?' any one character, '[...]' a set, a backslash escapes.
// The one glob matcher of poolguard: [classes], protect_users / protect_applications (dbview::glob_match).
bool glob_match(std::string_view pattern, std::string_view text);

// Parses the value of one [classes] line. Errors name the parameter and the reason (the caller prefixes
// file and line).
Result<ClassConfig> parse_class_line(const std::string& name, std::string_view value);

// The classes a pool uses: index 0 is always "default" (the [classes] "default" line if any, else priority
// 0 and no cap), then the other classes in file order.
std::vector<ClassConfig> effective_classes(const std::vector<ClassConfig>& configured);

// The index into `classes` (as effective_classes returns) of the first non-default class whose globs
// match, or 0 (default).
int match_class(const std::vector<ClassConfig>& classes, std::string_view application_name,
                std::string_view user);

}  // namespace poolguard::config
