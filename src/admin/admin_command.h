// Owns the admin console's lexical layer: splitting a Query's text into statements, statements into commands.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace poolguard::admin {

// One admin console statement, parsed. Either `CMD [arg]` or `SET key = value`.
struct AdminCommand {
    std::string verb;                // lower case ("show", "pause", "set", ...)
    std::optional<std::string> arg;  // CMD's argument as written (unquoted), if any
    std::string set_key;             // SET only: lower case unless written as a "quoted identifier"
    std::string set_value;           // SET only: the bare word or the unquoted 'string'
    std::string text;                // the statement as written, trimmed, for messages
};

// Splits `sql` at the ';' that are outside '...' and "..." quotes and returns the statements that are not
// blank, trimmed, without their ';'. An unterminated quote runs to the end of `sql` (parse_command reports
// it).
std::vector<std::string_view> split_statements(std::string_view sql);

// Parses one statement (as split_statements returns it). Errors carry SQLSTATE 42601 and a PgBouncer-like
// message ("invalid command '...', use SHOW HELP;").
Result<AdminCommand> parse_command(std::string_view statement);

// `text` cut to at most `max` bytes (with "..." appended when cut) and with NUL bytes replaced by spaces, so
// it can be quoted in an error message.
std::string excerpt(std::string_view text, size_t max = 200);

}  // namespace poolguard::admin
