// Owns the parsing of libpq-style "key=value key='quoted value'" strings used in [databases] and [users].
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace poolguard::config {

struct ConnstringPair {
    std::string key;  // lowercased
    std::string value;
};

// Splits `key=value` pairs separated by whitespace. Spaces around '=' are allowed. A value in single quotes
// may hold spaces, with '' standing for one quote. On failure returns a reason phrase without location.
std::expected<std::vector<ConnstringPair>, std::string> parse_connstring(std::string_view text);

}  // namespace poolguard::config
