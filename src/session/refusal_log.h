// Owns the log of connections refused before login (issue 15): one line per refusal naming the peer as
// IP:port and the reason, at most kLinesPerSecond lines a second and a summary line for the rest, and the
// poolguard_client_rejections_total counters. The limiter is sans-I/O (time passed in) for tests.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/rejections.h"

namespace poolguard::session {

class RefusalLimiter {
  public:
    using TimePoint = std::chrono::steady_clock::time_point;
    static constexpr int kLinesPerSecond = 20;

    // A refusal at `now`: true when it gets its own line. Otherwise it is counted for the summary.
    bool admit(TimePoint now, Rejection reason);
    // The summary of the refusals not logged in the last full second, once that second is over ("" when
    // there is nothing to say); call it before admit() and from a periodic tick.
    std::string take_summary(TimePoint now);

  private:
    TimePoint window_start_{};
    int lines_ = 0;
    std::array<uint64_t, kRejectionCount> suppressed_{};
    uint64_t suppressed_total_ = 0;
};

// Counts the refusal and logs it (rate-limited): "C-<id>: <ip>:<port> refused before login: <reason>:
// <detail>".
void log_refusal(Rejection reason, uint64_t client_id, std::string_view peer, int port,
                 std::string_view detail);
// Logs a pending summary line; the proxy's janitor calls it so the last second of a flood is reported too.
void flush_refusal_summary();

}  // namespace poolguard::session
