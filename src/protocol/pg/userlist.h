// Owns PgBouncer's auth_file (userlist.txt) format: parsing it into user -> secret and classifying secrets.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/error.h"

namespace poolguard::protocol::pg {

enum class SecretKind { kPlain, kMd5, kScramSha256 };

// "md5" + 32 lowercase hex -> kMd5; anything starting with "SCRAM-SHA-256$" -> kScramSha256 (whether or not
// it parses: parse_userlist rejects malformed ones, so a broken secret never silently becomes a password);
// everything else -> kPlain.
SecretKind classify_secret(std::string_view secret);

// Parses an auth_file: each line is `"username" "password"` (anything after the password is ignored);
// a double quote inside a field is written "". Blank lines and lines whose first non-blank character is
// ';' or '#' are comments. A later entry for the same user replaces an earlier one (as in PgBouncer).
// Errors name `file_name_for_errors:line`: an unquoted or unterminated field, a missing password, an empty
// user name, a NUL byte, or a secret that looks like SCRAM-SHA-256 but does not parse.
Result<std::map<std::string, std::string>> parse_userlist(std::string_view text,
                                                          std::string_view file_name_for_errors);

// Reads and parses the file at `path`.
Result<std::map<std::string, std::string>> load_userlist(const std::string& path);

}  // namespace poolguard::protocol::pg
