// Owns the parsing of single configuration values (integers, booleans, durations, lists, enums) into types.
#include "config/value_parser.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <system_error>
#include <utility>

namespace poolguard::config {

namespace {

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
        char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
        if (x != y) return false;
    }
    return true;
}

std::string range_reason(bool too_small, std::int64_t min, std::int64_t max) {
    if (too_small && min == 0) return "must not be negative";
    return "must be between " + std::to_string(min) + " and " + std::to_string(max);
}

// Largest duration accepted: about 31,700 years, far below what an int64 of microseconds holds.
constexpr double kMaxMicros = 1e18;

}  // namespace

std::string to_lower(std::string_view text) {
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::string_view trim(std::string_view text) {
    constexpr std::string_view kSpace = " \t\r\n\v\f";
    std::size_t begin = text.find_first_not_of(kSpace);
    if (begin == std::string_view::npos) return {};
    std::size_t end = text.find_last_not_of(kSpace);
    return text.substr(begin, end - begin + 1);
}

ValueResult<std::int64_t> parse_integer(std::string_view text, std::int64_t min, std::int64_t max) {
    std::int64_t value = 0;
    const char* first = text.data();
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(first, last, value);
    if (text.empty() || ptr != last) {
        if (ec == std::errc{} && ptr != last && (*ptr == '.' || *ptr == 'e' || *ptr == 'E')) {
            return std::unexpected("expected an integer, not a fraction");
        }
        return std::unexpected("expected an integer");
    }
    if (ec == std::errc::result_out_of_range)
        return std::unexpected(range_reason(text.front() == '-', min, max));
    if (value < min || value > max) return std::unexpected(range_reason(value < min, min, max));
    if (ec != std::errc{}) return std::unexpected("expected an integer");
    return value;
}

ValueResult<double> parse_real(std::string_view text, double min, double max) {
    double value = 0;
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), last, value, std::chars_format::fixed);
    if (text.empty() || ptr != last || ec != std::errc{} || !std::isfinite(value))
        return std::unexpected("expected a number such as 0.5");
    if (value < min || value > max) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "must be between %g and %g", min, max);
        return std::unexpected(std::string(buf));
    }
    return value;
}

ValueResult<bool> parse_bool(std::string_view text) {
    static constexpr std::array<std::pair<std::string_view, bool>, 8> kWords{{{"1", true},
                                                                              {"0", false},
                                                                              {"on", true},
                                                                              {"off", false},
                                                                              {"true", true},
                                                                              {"false", false},
                                                                              {"yes", true},
                                                                              {"no", false}}};
    for (const auto& [word, value] : kWords) {
        if (iequals(text, word)) return value;
    }
    return std::unexpected("expected a boolean (0/1, on/off, true/false, yes/no)");
}

ValueResult<std::int64_t> parse_integer_or_bool(std::string_view text, std::int64_t min, std::int64_t max) {
    if (auto flag = parse_bool(text)) {
        std::int64_t value = *flag ? 1 : 0;
        if (value >= min && value <= max) return value;
    }
    auto value = parse_integer(text, min, max);
    if (!value && value.error() == "expected an integer") {
        return std::unexpected("expected an integer or a boolean (0/1, on/off, true/false, yes/no)");
    }
    return value;
}

ValueResult<Micros> parse_duration(std::string_view text) {
    static constexpr std::string_view kExpected =
        "expected seconds (e.g. 30 or 0.5) or a number with a unit: us, ms, s, min, h, d";
    if (text.empty()) return std::unexpected(std::string(kExpected));
    // from_chars would also take "inf" and "nan"; a duration starts with a digit, a dot or a minus sign.
    char lead = text.front();
    if (!((lead >= '0' && lead <= '9') || lead == '.' || lead == '-')) {
        return std::unexpected(std::string(kExpected));
    }
    double number = 0;
    const char* last = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), last, number);
    if (ec == std::errc::result_out_of_range) return std::unexpected("too large");
    if (ec != std::errc{} || !std::isfinite(number)) return std::unexpected(std::string(kExpected));
    std::string_view unit = trim(std::string_view(ptr, static_cast<std::size_t>(last - ptr)));

    static constexpr std::array<std::pair<std::string_view, double>, 6> kUnits{
        {{"us", 1.0}, {"ms", 1e3}, {"s", 1e6}, {"min", 60e6}, {"h", 3600e6}, {"d", 86400e6}}};
    double factor = 0;
    if (unit.empty()) {
        factor = 1e6;  // PgBouncer's unit: seconds
    } else {
        for (const auto& [name, scale] : kUnits) {
            if (iequals(unit, name)) factor = scale;
        }
        if (factor == 0) {
            return std::unexpected("unknown unit '" + std::string(unit) + "'; " + std::string(kExpected));
        }
    }
    if (std::signbit(number) && number != 0) return std::unexpected("must not be negative");
    double micros = number * factor;
    if (micros > kMaxMicros) return std::unexpected("too large");
    return Micros{static_cast<std::int64_t>(std::llround(micros))};
}

ValueResult<int> parse_octal_mode(std::string_view text) {
    static constexpr const char* kExpected = "expected an octal file mode such as 0777";
    if (text.empty()) return std::unexpected(kExpected);
    int value = 0;
    for (char c : text) {
        if (c < '0' || c > '7') return std::unexpected(kExpected);
        value = value * 8 + (c - '0');
        if (value > 07777) return std::unexpected("file mode must be at most 07777");
    }
    return value;
}

std::vector<std::string> parse_list(std::string_view text) {
    std::vector<std::string> items;
    while (true) {
        std::size_t comma = text.find(',');
        std::string_view item = trim(text.substr(0, comma));
        if (!item.empty()) items.emplace_back(item);
        if (comma == std::string_view::npos) break;
        text.remove_prefix(comma + 1);
    }
    return items;
}

ValueResult<PoolMode> parse_pool_mode(std::string_view text) {
    if (iequals(text, "session")) return PoolMode::kSession;
    if (iequals(text, "transaction")) return PoolMode::kTransaction;
    if (iequals(text, "statement")) return PoolMode::kStatement;
    return std::unexpected("expected session, transaction or statement");
}

ValueResult<AuthType> parse_auth_type(std::string_view text) {
    static constexpr std::array<AuthType, 7> kTypes{AuthType::kTrust,       AuthType::kPlain, AuthType::kMd5,
                                                    AuthType::kScramSha256, AuthType::kAny,   AuthType::kHba,
                                                    AuthType::kCert};
    for (AuthType type : kTypes) {
        if (iequals(text, to_string(type))) return type;
    }
    static constexpr std::string_view kExpected =
        "expected one of trust, plain, md5, scram-sha-256, any, hba, cert";
    if (iequals(text, "pam") || iequals(text, "ldap") || iequals(text, "crypt")) {
        return std::unexpected(to_lower(text) + " is not supported by poolguard; " + std::string(kExpected));
    }
    return std::unexpected(std::string(kExpected));
}

ValueResult<std::string> parse_sslmode(std::string_view text) {
    static constexpr std::array<std::string_view, 6> kModes{"disable", "allow",     "prefer",
                                                            "require", "verify-ca", "verify-full"};
    for (std::string_view mode : kModes) {
        if (iequals(text, mode)) return std::string(mode);
    }
    return std::unexpected("expected one of disable, allow, prefer, require, verify-ca, verify-full");
}

ValueResult<std::string> parse_host_port(std::string_view text) {
    static constexpr const char* kExpected = "expected host:port (e.g. 127.0.0.1:9127 or [::1]:9127)";
    if (text.empty()) return std::string();
    std::size_t colon = std::string_view::npos;
    if (text.front() == '[') {
        std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            return std::unexpected(kExpected);
        }
        colon = close + 1;
    } else {
        colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::unexpected(kExpected);
        if (text.substr(0, colon).find(':') != std::string_view::npos) {
            return std::unexpected("an IPv6 address needs brackets, e.g. [::1]:9127");
        }
    }
    if (!parse_integer(text.substr(colon + 1), 1, 65535)) {
        return std::unexpected("port must be an integer between 1 and 65535");
    }
    return std::string(text);
}

}  // namespace poolguard::config
