// Owns the parameter table of [pgbouncer] and [poolguard]: each setting's name, kind, Config field, range and
// support level, and how a value is shown (SHOW CONFIG) and whether it can change at run time. Internal to
// src/config: the loader (config.cpp) validates and stores values through it.
#pragma once

#include <climits>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.h"

namespace poolguard::config::params {

enum class ValueKind {
    kString,
    kInt,
    kIntOrBool,
    kBool,
    kDouble,
    kDuration,
    kList,
    kAddressList,
    kOctal,
    kPoolMode,
    kAuthType,
    kSslMode,
    kHostPort
};

// kNotYet: loads, but a non-default value draws an "accepted, not implemented: X" warning.
// kCustom: `unsupported` decides, for settings where only some values are implemented.
// A setting whose silent absence would weaken security or a limit is never kNotYet: it is implemented, or
// refused by a check of its own (TLS files: net/tls_context.cpp at start and reload; parse_auth_type for
// pam/ldap).
enum class Support { kImplemented, kNotYet, kCustom };

using FieldPtr =
    std::variant<std::string Config::*, int Config::*, bool Config::*, double Config::*, Micros Config::*,
                 std::vector<std::string> Config::*, PoolMode Config::*, AuthType Config::*>;

// Returns "name=value" when the configured value is one poolguard does not implement yet, else "".
using UnsupportedCheck = std::string (*)(const Config&);

struct ParamSpec {
    std::string_view name;
    ValueKind kind = ValueKind::kString;
    FieldPtr field;
    std::int64_t min = 0;
    std::int64_t max = INT_MAX;
    Support support = Support::kImplemented;
    UnsupportedCheck unsupported = nullptr;
    double real_min = 0;  // kDouble: the accepted range
    double real_max = 0;
};

const std::vector<ParamSpec>& pgbouncer_params();
const std::vector<ParamSpec>& poolguard_params();
const ParamSpec* find_param(std::span<const ParamSpec> params, std::string_view name);
// Whether `field` holds its default value in `cfg`.
bool is_default(const Config& cfg, const Config& defaults, const FieldPtr& field);
// The value as SHOW CONFIG shows it.
std::string format_value(const Config& cfg, const ParamSpec& spec);
// False for parameters whose change needs a restart (listeners, identity, process setup).
bool changeable_at_runtime(std::string_view name);

}  // namespace poolguard::config::params
