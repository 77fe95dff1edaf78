// Owns the 30-second assessment behind `poolguard diagnose`: from one Snapshot to slots, states, top
// consumers, long/idle/leaking sessions, a verdict and the next command; rendered as text or JSON. Sans-I/O.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dbview/snapshot.h"
#include "ops/trend.h"

namespace poolguard::ops {

// The runbook's limits: queries longer than 2 minutes, idle longer than 5, idle in transaction longer than 1.
struct DiagnosisLimits {
    double long_running_s = 120;
    double idle_s = 300;
    double idle_in_transaction_s = 60;
    double warning_utilization = 0.75;
    double critical_utilization = 0.90;
};

enum class Verdict { healthy, warning, critical };
std::string to_string(Verdict v);

struct SessionLine {
    int64_t id = 0;
    std::string user, database, application, client_addr, state, query;
    double age_s = 0;
};

struct Diagnosis {
    dbview::Engine engine = dbview::Engine::postgres;
    std::string server_version;
    std::string target;    // the DSN with the password hidden
    std::string taken_at;  // UTC, ISO 8601
    int max_connections = 0, reserved_connections = 0, usable = 0, used = 0;
    double utilization = 0;
    std::vector<std::pair<std::string, int>> by_state;
    std::vector<std::pair<std::string, int>> top_applications, top_users, top_client_hosts;  // most first
    std::vector<SessionLine> long_running, idle, idle_in_transaction;                        // oldest first
    Verdict verdict = Verdict::healthy;
    std::vector<std::string> reasons;
    std::string next_command;
};

Diagnosis diagnose(const dbview::Snapshot& snapshot, const std::string& redacted_dsn,
                   const DiagnosisLimits& limits = {});

nlohmann::json to_json(const Diagnosis& d, const std::optional<TrendReport>& trend = std::nullopt);
// One screen: verdict first, then slots, states, consumers, the sessions that matter, and the next command.
std::string render_text(const Diagnosis& d, const std::optional<TrendReport>& trend = std::nullopt);
// "[#########-----------] 45%" of `width` cells; over-full bars are drawn full and marked with '!'.
std::string utilization_bar(double utilization, int width = 30);
// Single-quote a word for a POSIX shell when it needs it.
std::string shell_quote(const std::string& word);

}  // namespace poolguard::ops
