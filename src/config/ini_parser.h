// Owns the line-level reading of pgbouncer.ini files: sections, key = value lines, comments and %include.
#pragma once

#include <functional>
#include <string>

#include "common/error.h"

namespace poolguard::config {

// One meaningful line of an ini file, as the parser hands it to its visitor.
struct IniEntry {
    enum class Kind { kSection, kKeyValue };

    Kind kind = Kind::kKeyValue;
    std::string section;  // lowercased; for kSection the new section, else the one the line is in ("" = none)
    std::string key;      // kKeyValue: as written (double-quoted keys are unquoted, "" -> ")
    bool key_quoted = false;
    std::string value;  // kKeyValue: trimmed, otherwise verbatim (';' and '#' inside are not comments)
    std::string file;   // the file the line is in (an included file's resolved path)
    int line = 0;
};

// Returns an error to stop parsing; its message is passed through unchanged.
using IniVisitor = std::function<Status(const IniEntry&)>;

// Limits that keep a hostile or broken file from exhausting memory or the stack.
inline constexpr int kMaxIncludeDepth = 16;
inline constexpr std::size_t kMaxIniFileBytes = 64u << 20;

// Parses the file at `path`. Errors name "<file>:<line>:" (or "<file>:" for an unreadable top file).
// Relative %include paths are resolved against the directory of the file that contains the directive; the
// current section carries into an included file and whatever section it ends in carries back out.
Status parse_ini_file(const std::string& path, const IniVisitor& visitor);

// Parses `text` as if it were the file `name` (used in messages and to resolve relative %include paths).
Status parse_ini_text(const std::string& text, const std::string& name, const IniVisitor& visitor);

}  // namespace poolguard::config
