// Tests the logscan classifier on single lines and on the checked-in sample logs of each kind.
#include "ops/log_classifier.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

namespace poolguard::ops {
namespace {

std::string data_path(const std::string& name) {
    return std::string(POOLGUARD_SOURCE_DIR) + "/tests/data/logs/" + name;
}

LogScan scan_file(const std::string& path) {
    LogScan scan;
    std::ifstream in(path);
    EXPECT_TRUE(in) << path;
    std::string line;
    while (std::getline(in, line))
        scan.add_line(line);
    return scan;
}

int count(const LogScan& s, LogCategory c) {
    return s.stats(c).count;
}

TEST(LogClassifier, Lines) {
    EXPECT_EQ(classify_log_line("FATAL:  sorry, too many clients already"), LogCategory::pg_too_many_clients);
    EXPECT_EQ(
        classify_log_line("FATAL:  remaining connection slots are reserved for non-replication superuser "
                          "connections"),
        LogCategory::pg_reserved_slots);
    EXPECT_EQ(classify_log_line("ERROR 1040 (HY000): Too many connections"),
              LogCategory::mysql_too_many_connections);
    EXPECT_EQ(classify_log_line("SQLSTATE[08004] [1040] Too many connections"),
              LogCategory::mysql_too_many_connections);
    EXPECT_EQ(
        classify_log_line("HikariPool-1 - Connection is not available, request timed out after 30000ms."),
        LogCategory::pool_timeout);
    EXPECT_EQ(classify_log_line("redis: connection pool exhausted"), LogCategory::pool_timeout);
    EXPECT_EQ(classify_log_line("pooler error: no more connections allowed (max_client_conn)"),
              LogCategory::pooler_refusal);
    EXPECT_EQ(classify_log_line("pooler error: query_wait_timeout"), LogCategory::pooler_refusal);
    EXPECT_EQ(classify_log_line("psql: error: connection to server failed: timeout expired"),
              LogCategory::connection_timeout);
    EXPECT_EQ(classify_log_line("java.net.SocketTimeoutException: Connect timed out"),
              LogCategory::connection_timeout);
    EXPECT_FALSE(classify_log_line("LOG:  connection received: host=10.0.0.7 port=57432"));
    EXPECT_FALSE(classify_log_line("INFO request served in 12 ms"));
    EXPECT_FALSE(classify_log_line("terminating connection due to idle-in-transaction timeout"));
    EXPECT_FALSE(classify_log_line(""));
}

TEST(LogClassifier, Timestamps) {
    EXPECT_EQ(log_line_timestamp("2026-11-20 10:00:11.004 UTC [4001] FATAL: x"), "2026-11-20 10:00:11");
    EXPECT_EQ(log_line_timestamp("[2026-11-20 10:21:00] worker.ERROR: x"), "2026-11-20 10:21:00");
    EXPECT_EQ(log_line_timestamp("2026-11-20T10:22:45.001Z level=error"), "2026-11-20 10:22:45");
    EXPECT_EQ(log_line_timestamp("2026-11-20 10:30:45,120 ERROR"), "2026-11-20 10:30:45");
    EXPECT_EQ(log_line_timestamp("{\"ts\":\"2026-11-20T10:23:40.104Z\"}"), "2026-11-20 10:23:40");
    EXPECT_EQ(log_line_timestamp("2026-11-20 10:30 short"), "2026-11-20 10:30:00");
    EXPECT_FALSE(log_line_timestamp("no time here"));
    EXPECT_FALSE(log_line_timestamp("12026-11-20 10:30:00"));
}

TEST(LogClassifier, PostgresLog) {
    auto s = scan_file(data_path("postgresql.log"));
    EXPECT_EQ(s.lines(), 12);
    EXPECT_EQ(count(s, LogCategory::pg_reserved_slots), 2);
    EXPECT_EQ(count(s, LogCategory::pg_too_many_clients), 3);
    EXPECT_EQ(s.total_matches(), 5);
    const auto& st = s.stats(LogCategory::pg_too_many_clients);
    EXPECT_EQ(st.first_seen, "2026-11-20 10:00:41");
    EXPECT_EQ(st.last_seen, "2026-11-20 10:01:07");
    EXPECT_EQ(st.per_minute.at("2026-11-20 10:00"), 1);
    EXPECT_EQ(st.per_minute.at("2026-11-20 10:01"), 2);
}

TEST(LogClassifier, MariadbErrorLog) {
    auto s = scan_file(data_path("mariadb-error.log"));
    EXPECT_EQ(count(s, LogCategory::mysql_too_many_connections), 3);
    EXPECT_EQ(s.total_matches(), 3);
    EXPECT_EQ(s.stats(LogCategory::mysql_too_many_connections).per_minute.size(), 2u);
}

TEST(LogClassifier, ApplicationLog) {
    auto s = scan_file(data_path("app-hikari.log"));
    EXPECT_EQ(count(s, LogCategory::pool_timeout), 5);
    EXPECT_EQ(count(s, LogCategory::pg_too_many_clients), 1);
    EXPECT_EQ(count(s, LogCategory::connection_timeout), 1);
    EXPECT_EQ(s.total_matches(), 7);
    EXPECT_EQ(s.stats(LogCategory::pool_timeout).without_timestamp, 1);
    EXPECT_EQ(s.stats(LogCategory::pool_timeout).first_seen, "2026-11-20 10:21:33");
    EXPECT_EQ(s.stats(LogCategory::pool_timeout).last_seen, "2026-11-20 10:23:40");
}

TEST(LogClassifier, PgbouncerLog) {
    auto s = scan_file(data_path("pgbouncer.log"));
    EXPECT_EQ(count(s, LogCategory::pooler_refusal), 4);
    EXPECT_EQ(s.total_matches(), 4);
}

TEST(LogClassifier, OutOfOrderLinesKeepFirstAndLast) {
    LogScan s;
    s.add_line("2026-11-20 10:05:00 FATAL: sorry, too many clients already");
    s.add_line("2026-11-20 10:01:00 FATAL: sorry, too many clients already");
    s.add_line("2026-11-20 10:09:00 FATAL: sorry, too many clients already");
    const auto& st = s.stats(LogCategory::pg_too_many_clients);
    EXPECT_EQ(st.first_seen, "2026-11-20 10:01:00");
    EXPECT_EQ(st.last_seen, "2026-11-20 10:09:00");
    EXPECT_EQ(st.example, "2026-11-20 10:05:00 FATAL: sorry, too many clients already");
}

TEST(LogClassifier, RunbookActionForEveryCategory) {
    for (size_t i = 0; i < kLogCategoryCount; ++i) {
        EXPECT_FALSE(runbook_action(static_cast<LogCategory>(i)).empty());
        EXPECT_NE(to_string(static_cast<LogCategory>(i)), "unknown");
    }
}

}  // namespace
}  // namespace poolguard::ops
