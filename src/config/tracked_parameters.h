// Owns the table of session parameters poolguard can keep per client and re-apply on whichever server the
// client gets: PgBouncer's five built-ins and the ones track_extra_parameters may add (PgBouncer 1.25 can
// track only what PostgreSQL reports with ParameterStatus).
#pragma once

#include <iterator>
#include <string_view>

#include "config/config.h"

namespace poolguard::config {

struct TrackableParameter {
    const char* lower;
    const char* canonical;
    bool builtin;  // always tracked; the others only when listed in track_extra_parameters
};
inline constexpr TrackableParameter kTrackableParameters[] = {
    {"client_encoding", "client_encoding", true},
    {"datestyle", "DateStyle", true},
    {"timezone", "TimeZone", true},
    {"standard_conforming_strings", "standard_conforming_strings", true},
    {"application_name", "application_name", true},
    {"intervalstyle", "IntervalStyle", false},
    {"default_transaction_read_only", "default_transaction_read_only", false},
    {"search_path", "search_path", false},  // reported by PostgreSQL 18 (and Citus)
};
inline constexpr size_t kTrackableCount = std::size(kTrackableParameters);

inline int trackable_index(std::string_view lower) {
    for (size_t i = 0; i < kTrackableCount; ++i)
        if (lower == kTrackableParameters[i].lower) return static_cast<int>(i);
    return -1;
}

inline bool ascii_iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

// Whether `cfg` tracks the parameter `lower` for clients: a built-in, or listed in track_extra_parameters.
inline bool tracks_parameter(const Config& cfg, std::string_view lower) {
    const int i = trackable_index(lower);
    if (i < 0) return false;
    if (kTrackableParameters[i].builtin) return true;
    for (const std::string& name : cfg.track_extra_parameters)
        if (ascii_iequals(name, lower)) return true;
    return false;
}

}  // namespace poolguard::config
