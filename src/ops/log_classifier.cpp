// Owns the log classifier's patterns, timestamp recognition and per-category aggregation.
#include "ops/log_classifier.h"

#include <algorithm>
#include <cctype>
#include <vector>

namespace poolguard::ops {

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool contains_any(const std::string& hay, std::initializer_list<std::string_view> needles) {
    for (auto n : needles)
        if (hay.find(n) != std::string::npos) return true;
    return false;
}

bool digits(std::string_view s, size_t pos, size_t n) {
    if (pos + n > s.size()) return false;
    for (size_t i = pos; i < pos + n; ++i)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

}  // namespace

std::string_view to_string(LogCategory c) {
    switch (c) {
        case LogCategory::pg_too_many_clients:
            return "pg_too_many_clients";
        case LogCategory::pg_reserved_slots:
            return "pg_reserved_slots";
        case LogCategory::mysql_too_many_connections:
            return "mysql_too_many_connections";
        case LogCategory::pool_timeout:
            return "pool_timeout";
        case LogCategory::pooler_refusal:
            return "pooler_refusal";
        case LogCategory::connection_timeout:
            return "connection_timeout";
    }
    return "unknown";
}

std::string_view runbook_action(LogCategory c) {
    switch (c) {
        case LogCategory::pg_too_many_clients:
            return "PostgreSQL is out of slots: run `poolguard diagnose DSN` as a superuser (reserved "
                   "slots), then "
                   "`poolguard recover DSN --kill-idle 5m --cancel-long 2m` (dry run first, then --execute)";
        case LogCategory::pg_reserved_slots:
            return "only superuser slots are left: connect as a superuser, `poolguard diagnose DSN`, then "
                   "recover "
                   "idle (>5m) and long (>2m) sessions; put a pooler in front of the app";
        case LogCategory::mysql_too_many_connections:
            return "MySQL hit max_connections: connect with a SUPER/CONNECTION ADMIN account (one extra "
                   "slot) or "
                   "the extra_port, `poolguard diagnose mysql://...`, then `poolguard recover ... "
                   "--kill-idle 5m`";
        case LogCategory::pool_timeout:
            return "the application's pool waited too long: check the database (diagnose) for slow queries "
                   "and "
                   "leaked transactions before raising the pool size; look for connection leaks in the app";
        case LogCategory::pooler_refusal:
            return "the pooler refused clients: check SHOW POOLS (cl_waiting, maxwait); raise "
                   "max_client_conn or "
                   "pool size only if the database has headroom, else recover sessions on the database";
        case LogCategory::connection_timeout:
            return "clients could not connect in time: check that the database/pooler is up and reachable, "
                   "then "
                   "`poolguard diagnose DSN` for exhaustion";
    }
    return "";
}

std::optional<LogCategory> classify_log_line(std::string_view raw) {
    const std::string line = lower(raw);
    // Most specific first: one line lands in exactly one category.
    if (contains_any(line, {"remaining connection slots are reserved"}))
        return LogCategory::pg_reserved_slots;
    if (contains_any(line, {"too many clients already", "too many connections for role",
                            "too many connections for database"}))
        return LogCategory::pg_too_many_clients;
    if (contains_any(line, {"no more connections allowed", "query_wait_timeout", "pooler error: query_wait",
                            "client_login_timeout"}))
        return LogCategory::pooler_refusal;
    if (contains_any(line, {"too many connections", "er_con_count_error", "[1040]", "error 1040", "(1040)",
                            "errno 1040"}))
        return LogCategory::mysql_too_many_connections;
    if (contains_any(
            line,
            {"connection is not available, request timed out", "connection pool exhausted", "pool exhausted",
             "timeout waiting for connection", "timeout waiting for idle object",
             "timed out waiting for a connection", "unable to acquire jdbc connection", "queuepool limit",
             "could not get a connection from the pool", "cannot get a connection, pool error"}))
        return LogCategory::pool_timeout;
    if (contains_any(line,
                     {"connection timeout", "connection timed out", "connect timed out", "connect timeout",
                      "timeout expired", "etimedout", "connection attempt timed out"}))
        return LogCategory::connection_timeout;
    return std::nullopt;
}

std::optional<std::string> log_line_timestamp(std::string_view line) {
    const size_t limit = std::min<size_t>(line.size(), 64);
    for (size_t i = 0; i + 16 <= line.size() && i < limit; ++i) {
        // YYYY-MM-DD?HH:MM
        if (!digits(line, i, 4) || line[i + 4] != '-' || !digits(line, i + 5, 2) || line[i + 7] != '-' ||
            !digits(line, i + 8, 2) || (line[i + 10] != ' ' && line[i + 10] != 'T') ||
            !digits(line, i + 11, 2) || line[i + 13] != ':' || !digits(line, i + 14, 2))
            continue;
        if (i > 0 && line[i - 1] >= '0' && line[i - 1] <= '9') continue;
        std::string out(line.substr(i, 10));
        out += ' ';
        out += line.substr(i + 11, 5);
        if (i + 19 <= line.size() && line[i + 16] == ':' && digits(line, i + 17, 2)) {
            out += line.substr(i + 16, 3);
        } else {
            out += ":00";
        }
        return out;
    }
    return std::nullopt;
}

void LogScan::add_line(std::string_view line) {
    ++lines_;
    auto category = classify_log_line(line);
    if (!category) return;
    auto& st = stats_[static_cast<size_t>(*category)];
    ++st.count;
    if (st.example.empty()) {
        std::string_view ex = line;
        while (!ex.empty() && (ex.back() == '\r' || ex.back() == '\n'))
            ex.remove_suffix(1);
        st.example = std::string(ex.substr(0, 200));
    }
    auto ts = log_line_timestamp(line);
    if (!ts) {
        ++st.without_timestamp;
        return;
    }
    if (!st.first_seen || *ts < *st.first_seen) st.first_seen = *ts;
    if (!st.last_seen || *ts > *st.last_seen) st.last_seen = *ts;
    ++st.per_minute[ts->substr(0, 16)];
}

int LogScan::total_matches() const {
    int n = 0;
    for (const auto& s : stats_)
        n += s.count;
    return n;
}

}  // namespace poolguard::ops
