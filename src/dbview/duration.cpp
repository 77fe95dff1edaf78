// Owns duration parsing and age formatting.
#include "dbview/duration.h"

#include <cmath>
#include <cstdio>

namespace poolguard::dbview {

Result<double> parse_duration_seconds(std::string_view text) {
    const std::string original(text);
    if (text.empty()) return fail("empty duration (use e.g. 90s, 5m, 1h)");
    double total = 0;
    bool any = false;
    while (!text.empty()) {
        size_t i = 0;
        while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.'))
            ++i;
        if (i == 0) return fail("bad duration \"" + original + "\" (use e.g. 90s, 5m, 1h)");
        double value = 0;
        try {
            value = std::stod(std::string(text.substr(0, i)));
        } catch (...) {
            return fail("bad duration \"" + original + "\" (use e.g. 90s, 5m, 1h)");
        }
        text.remove_prefix(i);
        size_t u = 0;
        while (u < text.size() && text[u] >= 'a' && text[u] <= 'z')
            ++u;
        const std::string_view unit = text.substr(0, u);
        text.remove_prefix(u);
        double scale = 0;
        if (unit.empty() || unit == "s")
            scale = 1;
        else if (unit == "ms")
            scale = 0.001;
        else if (unit == "m" || unit == "min")
            scale = 60;
        else if (unit == "h")
            scale = 3600;
        else if (unit == "d")
            scale = 86400;
        else
            return fail("bad duration unit \"" + std::string(unit) + "\" in \"" + original +
                        "\" (ms, s, m, h, d)");
        if (unit.empty() && !text.empty())
            return fail("bad duration \"" + original + "\" (use e.g. 90s, 5m, 1h)");
        total += value * scale;
        any = true;
    }
    if (!any || !std::isfinite(total)) return fail("bad duration \"" + original + "\"");
    return total;
}

std::string format_age(double seconds) {
    char buf[32];
    if (seconds < 0) seconds = 0;
    if (seconds < 10) {
        std::snprintf(buf, sizeof buf, "%.1fs", seconds);
        return buf;
    }
    const long long s = std::llround(seconds);
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%llds", s);
    else if (s < 3600)
        std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
    else if (s < 86400)
        std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    else
        std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, (s % 86400) / 3600);
    return buf;
}

}  // namespace poolguard::dbview
