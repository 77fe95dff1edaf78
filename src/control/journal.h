// Owns the incident journal: one JSON line per detector state change (time, kind, severity, database,
// evidence, attribution) appended to `journal_file`, and its readable rendering for `poolguard journal`.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <mutex>
#include <string>

#include "common/error.h"
#include "detect/finding.h"

namespace poolguard::control {

// The finding as JSON: kind, subject, database, severity, summary, evidence {name: number},
// attribution {dimension: [values]}.
nlohmann::json finding_to_json(const detect::Finding& f);
// RFC 3339 UTC with milliseconds.
std::string format_time(std::chrono::system_clock::time_point t);

// One journal line for a state change of `f` from `previous`.
nlohmann::json journal_entry(const detect::Finding& f, detect::Severity previous,
                             std::chrono::system_clock::time_point at);

// Renders one journal line for people: "TIME  SEVERITY  KIND  DATABASE  summary" plus indented
// attribution and evidence. Lines that are not JSON are returned as they are.
std::string format_journal_line(const std::string& line);

class Journal {
  public:
    // Opens `path` for appending; empty path = keep entries in memory only.
    Status open(const std::string& path);
    void append(const nlohmann::json& entry);
    // The last `limit` entries (newest last).
    nlohmann::json recent(size_t limit = 500) const;

  private:
    mutable std::mutex mutex_;
    std::ofstream out_;
    std::vector<nlohmann::json> recent_;
};

}  // namespace poolguard::control
