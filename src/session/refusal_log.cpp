// Owns the rate-limited log and the counters of connections refused before login (see refusal_log.h).
#include "session/refusal_log.h"

#include <spdlog/spdlog.h>

#include "common/dataplane_counters.h"

namespace poolguard::session {

bool RefusalLimiter::admit(TimePoint now, Rejection reason) {
    if (now - window_start_ >= std::chrono::seconds(1)) {
        window_start_ = now;
        lines_ = 0;
    }
    if (lines_ < kLinesPerSecond) {
        ++lines_;
        return true;
    }
    ++suppressed_[static_cast<size_t>(reason)];
    ++suppressed_total_;
    return false;
}

std::string RefusalLimiter::take_summary(TimePoint now) {
    if (suppressed_total_ == 0 || now - window_start_ < std::chrono::seconds(1)) return {};
    std::string out = std::to_string(suppressed_total_) + " more connection(s) refused before login (";
    bool first = true;
    for (size_t i = 0; i < suppressed_.size(); ++i) {
        if (suppressed_[i] == 0) continue;
        if (!first) out += ", ";
        first = false;
        out += to_string(static_cast<Rejection>(i));
        out += '=';
        out += std::to_string(suppressed_[i]);
    }
    out += ") in the last second; not logged one by one";
    suppressed_ = {};
    suppressed_total_ = 0;
    return out;
}

namespace {
RefusalLimiter& limiter() {
    thread_local RefusalLimiter l;  // the data plane is one io thread
    return l;
}
}  // namespace

void log_refusal(Rejection reason, uint64_t client_id, std::string_view peer, int port,
                 std::string_view detail) {
    dataplane_counters().client_rejections[static_cast<size_t>(reason)].fetch_add(1,
                                                                                  std::memory_order_relaxed);
    const auto now = std::chrono::steady_clock::now();
    auto& l = limiter();
    if (auto summary = l.take_summary(now); !summary.empty()) spdlog::warn("{}", summary);
    if (!l.admit(now, reason)) return;
    spdlog::warn("C-{}: {}:{} refused before login: {}{}{}", client_id, peer, port, to_string(reason),
                 detail.empty() ? "" : ": ", detail);
}

void flush_refusal_summary() {
    if (auto summary = limiter().take_summary(std::chrono::steady_clock::now()); !summary.empty())
        spdlog::warn("{}", summary);
}

}  // namespace poolguard::session
