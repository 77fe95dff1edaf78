// Owns AdaptiveLimit and LatencyWindowCollector: Gradient2 applied to a pool's server connections (see
// adaptive_limit.h for the algorithm and its parameters).
#include "pool/adaptive_limit.h"

#include <algorithm>
#include <cmath>

namespace poolguard::pool {

namespace {
// A mean query time of 0 µs (clock granularity) would make the ratio infinite.
constexpr double kMinRttUs = 1.0;
}  // namespace

AdaptiveLimit::AdaptiveLimit(const AdaptiveLimitSettings& settings) : settings_(settings) {
    set_bounds(settings.min_limit, settings.max_limit);
    estimate_ = settings.initial_limit;
    clamp_estimate();
}

void AdaptiveLimit::configure(const AdaptiveLimitSettings& settings) {
    settings_ = settings;
    set_bounds(settings.min_limit, settings.max_limit);
}

void AdaptiveLimit::set_bounds(int min_limit, int max_limit) {
    settings_.min_limit = std::max(1, min_limit);
    settings_.max_limit = std::max(settings_.min_limit, max_limit);
    clamp_estimate();
}

void AdaptiveLimit::clamp_estimate() {
    estimate_ = std::clamp(estimate_, static_cast<double>(settings_.min_limit),
                           static_cast<double>(settings_.max_limit));
}

int AdaptiveLimit::limit() const {
    const int l = static_cast<int>(std::floor(estimate_));
    return std::clamp(l, settings_.min_limit, settings_.max_limit);
}

void AdaptiveLimit::update_long_rtt(double rtt_us) {
    ++long_count_;
    const auto warmup = static_cast<uint64_t>(std::max(1, settings_.long_warmup));
    if (long_count_ <= warmup) {
        // Plain running mean while warming up.
        long_rtt_us_ += (rtt_us - long_rtt_us_) / static_cast<double>(long_count_);
        return;
    }
    const double factor = 2.0 / (std::max(1, settings_.long_window) + 1.0);
    long_rtt_us_ = long_rtt_us_ * (1.0 - factor) + rtt_us * factor;
}

void AdaptiveLimit::cap(int servers) {
    estimate_ = std::min(estimate_, static_cast<double>(servers));
    clamp_estimate();
}

int AdaptiveLimit::on_window(const LatencyWindow& window) {
    ++windows_;
    if (window.errors > 0) {
        // Drops mean overload downstream whatever the latency says.
        gradient_ = settings_.error_backoff;
        estimate_ *= std::clamp(settings_.error_backoff, 0.01, 1.0);
        clamp_estimate();
        return limit();
    }
    if (window.samples == 0) return limit();
    const double short_rtt = std::max(kMinRttUs, window.mean_latency_us);
    short_rtt_us_ = short_rtt;
    update_long_rtt(short_rtt);
    // After a long overload the average lags far behind: pull it down faster than the EMA would.
    if (long_rtt_us_ / short_rtt > 2.0) long_rtt_us_ *= 0.95;
    // Too little demand to tell whether more connections would help: leave the limit alone.
    if (window.inflight < estimate_ / 2.0) {
        gradient_ = 1.0;
        return limit();
    }
    gradient_ = std::clamp(settings_.rtt_tolerance * long_rtt_us_ / short_rtt, 0.5, 1.0);
    const double proposed = estimate_ * gradient_ + settings_.queue_size;
    const double smoothing = std::clamp(settings_.smoothing, 0.0, 1.0);
    estimate_ = estimate_ * (1.0 - smoothing) + proposed * smoothing;
    clamp_estimate();
    return limit();
}

bool AdaptiveLimit::meaningful_change(int from, int to, int min_limit, int max_limit) {
    if (from == to) return false;
    if (to == min_limit || to == max_limit) return true;
    const int delta = std::abs(to - from);
    return delta >= 2 && delta * 5 >= from;
}

void LatencyWindowCollector::configure(std::chrono::microseconds min_window,
                                       std::chrono::microseconds max_window, uint64_t window_samples) {
    min_window_ = min_window;
    max_window_ = std::max(min_window, max_window);
    window_samples_ = std::max<uint64_t>(1, window_samples);
}

void LatencyWindowCollector::start(TimePoint now, const Totals& totals) {
    started_ = true;
    since_ = now;
    at_start_ = totals;
}

std::optional<LatencyWindow> LatencyWindowCollector::poll(TimePoint now, const Totals& totals,
                                                          int peak_inflight) {
    if (!started_) {
        start(now, totals);
        return std::nullopt;
    }
    const auto age = now - since_;
    // Counters only grow; a smaller value means they were reset: start over.
    if (totals.queries < at_start_.queries || totals.query_time_us < at_start_.query_time_us ||
        totals.errors < at_start_.errors) {
        start(now, totals);
        return std::nullopt;
    }
    const uint64_t samples = totals.queries - at_start_.queries;
    const uint64_t errors = totals.errors - at_start_.errors;
    const bool full = age >= min_window_ && samples >= window_samples_;
    const bool old = age >= max_window_;
    if (!full && !old) return std::nullopt;
    if (!full && samples == 0 && errors == 0) {
        start(now, totals);
        return std::nullopt;
    }
    LatencyWindow w;
    w.samples = samples;
    w.errors = errors;
    w.inflight = peak_inflight;
    if (samples > 0)
        w.mean_latency_us = static_cast<double>(totals.query_time_us - at_start_.query_time_us) /
                            static_cast<double>(samples);
    start(now, totals);
    return w;
}

}  // namespace poolguard::pool
