// Owns the parsing of single configuration values (integers, booleans, durations, lists, enums) into types.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace poolguard::config {

// Each parser returns the value, or a reason phrase that completes "invalid value 'x' for name: <reason>".
template <typename T>
using ValueResult = std::expected<T, std::string>;

// A decimal integer in [min, max]; no sign other than '-', no spaces, no suffix.
ValueResult<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max);

// A decimal number such as 0.2 or 1.5 in [min, max].
ValueResult<double> parse_real(std::string_view text, double min, double max);

// 0/1, on/off, true/false, yes/no (any case).
ValueResult<bool> parse_bool(std::string_view text);

// An integer, or a boolean word meaning 1/0 (PgBouncer keeps some switches as integers).
ValueResult<std::int64_t> parse_integer_or_bool(std::string_view text, std::int64_t min, std::int64_t max);

// Seconds as PgBouncer writes them ("120", "0.5"), or a number with a unit: us, ms, s, min, h, d.
ValueResult<Micros> parse_duration(std::string_view text);

// An octal file mode such as 0777 or 755, at most 07777.
ValueResult<int> parse_octal_mode(std::string_view text);

// Comma-separated, spaces around items ignored, empty items dropped.
std::vector<std::string> parse_list(std::string_view text);

ValueResult<PoolMode> parse_pool_mode(std::string_view text);
ValueResult<AuthType> parse_auth_type(std::string_view text);

// disable|allow|prefer|require|verify-ca|verify-full, returned lowercased.
ValueResult<std::string> parse_sslmode(std::string_view text);

// "host:port" or "[v6]:port" with port 1..65535; an empty host means all addresses.
ValueResult<std::string> parse_host_port(std::string_view text);

// Small string helpers shared by the loader.
std::string to_lower(std::string_view text);
std::string_view trim(std::string_view text);

}  // namespace poolguard::config
