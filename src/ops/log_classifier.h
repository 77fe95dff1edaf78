// Owns the sans-I/O log classifier behind `poolguard logscan`: recognises connection-exhaustion errors in
// PostgreSQL, MySQL/MariaDB, PgBouncer/poolguard and application logs, and aggregates them per category
// (count, first/last seen, per-minute histogram, runbook action).
#pragma once

#include <array>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace poolguard::ops {

enum class LogCategory {
    pg_too_many_clients,         // 53300 "sorry, too many clients already" (and per-role/database limits)
    pg_reserved_slots,           // "remaining connection slots are reserved for ... superuser"
    mysql_too_many_connections,  // 1040 "Too many connections"
    pool_timeout,        // application pools: HikariCP, "pool exhausted", "timeout waiting for connection"
    pooler_refusal,      // PgBouncer/poolguard: "no more connections allowed", query_wait_timeout
    connection_timeout,  // clients: "connection timeout", "connection timed out", libpq "timeout expired"
};
inline constexpr size_t kLogCategoryCount = 6;

std::string_view to_string(LogCategory c);
// What the runbook says to do about this kind of error, in one line.
std::string_view runbook_action(LogCategory c);

// The category of one log line, or nullopt. One line counts once, in the most specific category.
std::optional<LogCategory> classify_log_line(std::string_view line);

// The first "YYYY-MM-DD[ T]HH:MM[:SS]" in the line's first 64 characters, as "YYYY-MM-DD HH:MM:SS"
// (":00" when seconds are absent). Time zones are not converted: logs are compared as written.
std::optional<std::string> log_line_timestamp(std::string_view line);

struct CategoryStats {
    int count = 0;
    std::optional<std::string> first_seen;  // earliest timestamp (lines need not be in order)
    std::optional<std::string> last_seen;
    std::map<std::string, int> per_minute;  // "YYYY-MM-DD HH:MM" → count; lines without a timestamp excluded
    int without_timestamp = 0;
    std::string example;  // the first matching line, trimmed to 200 characters
};

class LogScan {
  public:
    void add_line(std::string_view line);
    long long lines() const { return lines_; }
    const CategoryStats& stats(LogCategory c) const { return stats_[static_cast<size_t>(c)]; }
    int total_matches() const;

  private:
    long long lines_ = 0;
    std::array<CategoryStats, kLogCategoryCount> stats_{};
};

}  // namespace poolguard::ops
