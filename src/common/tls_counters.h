// Owns the TLS handshake counters for the control plane: handshakes by side and outcome, and a handshake
// time histogram per side. Relaxed atomics, written by the io thread, read by the metrics endpoint.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

namespace poolguard {

struct TlsCounters {
    // Upper bounds (seconds) of the handshake-time buckets; the last bucket is +Inf.
    static constexpr std::array<double, 8> kBuckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1};
    struct Side {
        std::atomic<uint64_t> ok{0};
        std::atomic<uint64_t> failed{0};
        std::array<std::atomic<uint64_t>, kBuckets.size() + 1> bucket{};  // non-cumulative counts
        std::atomic<uint64_t> sum_us{0};
    };
    Side client;  // clients' handshakes with poolguard
    Side server;  // poolguard's handshakes with PostgreSQL servers
};

inline TlsCounters& tls_counters() {
    static TlsCounters counters;
    return counters;
}

// Records one handshake: side "client" or "server".
inline void tls_handshake_done(std::string_view side, bool ok, std::chrono::steady_clock::duration took) {
    auto& s = side == "server" ? tls_counters().server : tls_counters().client;
    (ok ? s.ok : s.failed).fetch_add(1, std::memory_order_relaxed);
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(took).count();
    const double secs = static_cast<double>(us) / 1e6;
    size_t i = 0;
    while (i < TlsCounters::kBuckets.size() && secs > TlsCounters::kBuckets[i])
        ++i;
    s.bucket[i].fetch_add(1, std::memory_order_relaxed);
    s.sum_us.fetch_add(static_cast<uint64_t>(us), std::memory_order_relaxed);
}

}  // namespace poolguard
