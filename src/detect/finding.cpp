// Owns the shared helpers of the detectors: severity names and attribution from grouped counts.
#include "detect/finding.h"

#include <algorithm>

namespace poolguard::detect {

const char* to_string(Severity s) {
    switch (s) {
        case Severity::ok:
            return "ok";
        case Severity::warning:
            return "warning";
        case Severity::critical:
            return "critical";
    }
    return "ok";
}

namespace {

std::string label_or_empty(const std::string& key) {
    return key.empty() ? "(none)" : key;
}

void add_rises(const char* dimension, const std::map<std::string, int>& before,
               const std::map<std::string, int>& after, int min_rise, size_t limit,
               std::vector<std::pair<std::string, std::string>>& out) {
    std::vector<std::pair<int, std::string>> rises;
    for (const auto& [key, n] : after) {
        auto it = before.find(key);
        const int rise = n - (it == before.end() ? 0 : it->second);
        if (rise >= min_rise && rise > 0) rises.emplace_back(rise, key);
    }
    std::sort(rises.begin(), rises.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (size_t i = 0; i < rises.size() && i < limit; ++i)
        out.emplace_back(dimension,
                         label_or_empty(rises[i].second) + " (+" + std::to_string(rises[i].first) + ")");
}

void add_top(const char* dimension, const std::map<std::string, int>& counts, size_t limit,
             std::vector<std::pair<std::string, std::string>>& out) {
    std::vector<std::pair<int, std::string>> sorted;
    for (const auto& [key, n] : counts)
        if (n > 0) sorted.emplace_back(n, key);
    std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (size_t i = 0; i < sorted.size() && i < limit; ++i)
        out.emplace_back(dimension,
                         label_or_empty(sorted[i].second) + " (" + std::to_string(sorted[i].first) + ")");
}

}  // namespace

std::vector<std::pair<std::string, std::string>> top_rises(const GroupCounts& before,
                                                           const GroupCounts& after, int min_rise,
                                                           size_t limit) {
    std::vector<std::pair<std::string, std::string>> out;
    add_rises("application", before.by_application, after.by_application, min_rise, limit, out);
    add_rises("user", before.by_user, after.by_user, min_rise, limit, out);
    add_rises("address", before.by_address, after.by_address, min_rise, limit, out);
    return out;
}

std::vector<std::pair<std::string, std::string>> top_groups(const GroupCounts& counts, size_t limit) {
    std::vector<std::pair<std::string, std::string>> out;
    add_top("application", counts.by_application, limit, out);
    add_top("user", counts.by_user, limit, out);
    add_top("address", counts.by_address, limit, out);
    return out;
}

}  // namespace poolguard::detect
