// Owns parsing of [classes] lines, glob matching and class selection (see classes.h).
#include "config/classes.h"

#include <fnmatch.h>

#include <charconv>
#include <string>

namespace poolguard::config {

bool glob_match(std::string_view pattern, std::string_view text) {
    // fnmatch wants C strings; this runs once per login, never per transaction.
    const std::string p(pattern), t(text);
    return ::fnmatch(p.c_str(), t.c_str(), 0) == 0;
}

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

bool parse_int(std::string_view s, int& out) {
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && ptr == s.data() + s.size();
}

}  // namespace

Result<ClassConfig> parse_class_line(const std::string& name, std::string_view value) {
    ClassConfig c;
    c.name = name;
    if (name.empty()) return fail("empty class name");
    for (char ch : name) {
        const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
                        ch == '_' || ch == '-' || ch == '.';
        if (!ok) return fail("invalid class name '" + name + "': use letters, digits, '_', '-' and '.'");
    }
    bool seen[4] = {};
    while (!trim(value).empty()) {
        value = trim(value);
        const size_t comma = value.find(',');
        std::string_view item = trim(value.substr(0, comma));
        value = comma == std::string_view::npos ? std::string_view{} : value.substr(comma + 1);
        const size_t eq = item.find('=');
        if (eq == std::string_view::npos)
            return fail("invalid item '" + std::string(item) + "' in class '" + name +
                        "': expected key=value");
        const std::string key(trim(item.substr(0, eq)));
        const std::string_view v = trim(item.substr(eq + 1));
        auto bad = [&](const std::string& why) {
            return fail("invalid value '" + std::string(v) + "' for " + key + " in class '" + name +
                        "': " + why);
        };
        int which = -1;
        if (key == "application_name") {
            which = 0;
            if (v.empty()) return bad("empty pattern (use * for any)");
            c.application_name = std::string(v);
        } else if (key == "user") {
            which = 1;
            if (v.empty()) return bad("empty pattern (use * for any)");
            c.user = std::string(v);
        } else if (key == "priority") {
            which = 2;
            if (!parse_int(v, c.priority) || c.priority < 0 || c.priority > 1000)
                return bad("expected an integer from 0 (served first) to 1000");
        } else if (key == "max_share") {
            which = 3;
            std::string_view digits = v;
            if (digits.ends_with('%')) digits.remove_suffix(1);
            if (!parse_int(digits, c.max_share) || c.max_share < 1 || c.max_share > 100)
                return bad("expected a percentage from 1 to 100");
        } else {
            return fail("unknown parameter '" + key + "' in class '" + name +
                        "' (known: application_name, user, priority, max_share)");
        }
        if (seen[which]) return fail("parameter '" + key + "' given twice in class '" + name + "'");
        seen[which] = true;
    }
    return c;
}

std::vector<ClassConfig> effective_classes(const std::vector<ClassConfig>& configured) {
    std::vector<ClassConfig> out;
    out.reserve(configured.size() + 1);
    ClassConfig def;
    def.name = std::string(kDefaultClass);
    out.push_back(def);
    for (const auto& c : configured) {
        if (c.name == kDefaultClass)
            out[0] = c;
        else
            out.push_back(c);
    }
    return out;
}

int match_class(const std::vector<ClassConfig>& classes, std::string_view application_name,
                std::string_view user) {
    for (size_t i = 1; i < classes.size(); ++i) {
        if (glob_match(classes[i].application_name, application_name) && glob_match(classes[i].user, user))
            return static_cast<int>(i);
    }
    return 0;
}

}  // namespace poolguard::config
