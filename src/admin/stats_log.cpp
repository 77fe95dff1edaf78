// Owns the periodic statistics log line of log_stats (see stats_log.h).
#include "admin/stats_log.h"

#include <fmt/format.h>

namespace poolguard::admin {

std::string stats_log_line(const std::vector<StatsRow>& rates) {
    StatsRow sum;
    for (const StatsRow& r : rates) {
        sum.xact_count += r.xact_count;
        sum.query_count += r.query_count;
        sum.bytes_received += r.bytes_received;
        sum.bytes_sent += r.bytes_sent;
        sum.xact_time_us += r.xact_time_us;
        sum.query_time_us += r.query_time_us;
        sum.wait_time_us += r.wait_time_us;
        sum.client_parse_count += r.client_parse_count;
        sum.server_parse_count += r.server_parse_count;
        sum.bind_count += r.bind_count;
    }
    const uint64_t xact_us = sum.xact_count ? sum.xact_time_us / sum.xact_count : 0;
    const uint64_t query_us = sum.query_count ? sum.query_time_us / sum.query_count : 0;
    return fmt::format(
        "stats: {} xacts/s, {} queries/s, {} client parses/s, {} server parses/s, {} binds/s, in {} B/s, "
        "out {} B/s, xact {} us, query {} us, wait {} us",
        sum.xact_count, sum.query_count, sum.client_parse_count, sum.server_parse_count, sum.bind_count,
        sum.bytes_received, sum.bytes_sent, xact_us, query_us, sum.wait_time_us);
}

}  // namespace poolguard::admin
