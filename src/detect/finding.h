// Owns the vocabulary of the detectors (issue 5): a Finding — what one detector concludes about one subject
// (a database, a client) at one moment: severity, a one-line summary, the numbers behind it (evidence) and
// who is causing it (attribution). Detectors are sans-I/O: samples in, findings out.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace poolguard::detect {

enum class Severity { ok, warning, critical };
const char* to_string(Severity s);

struct Finding {
    std::string kind;     // utilization | exhaustion_forecast | spike | leak | client_leak | errors
    std::string subject;  // database name; for client_leak "client C-<id>"
    std::string database;
    Severity severity = Severity::ok;
    std::string summary;                                           // one line for people
    std::vector<std::pair<std::string, double>> evidence;          // the numbers behind the conclusion
    std::vector<std::pair<std::string, std::string>> attribution;  // who: application, user, address, ...
};

// Connections of one sample grouped three ways; keys are application_name, user and client address.
struct GroupCounts {
    std::map<std::string, int> by_application;
    std::map<std::string, int> by_user;
    std::map<std::string, int> by_address;
};

// The groups that grew most from `before` to `after`, as attribution pairs ("application", "hog (+34)"),
// at most `limit` per dimension, only rises of at least `min_rise`.
std::vector<std::pair<std::string, std::string>> top_rises(const GroupCounts& before,
                                                           const GroupCounts& after, int min_rise,
                                                           size_t limit = 3);
// The largest groups of `counts`, as attribution pairs ("application", "worker (12)").
std::vector<std::pair<std::string, std::string>> top_groups(const GroupCounts& counts, size_t limit = 3);

}  // namespace poolguard::detect
