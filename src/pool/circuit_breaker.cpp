// Owns the circuit breaker state machine (see circuit_breaker.h).
#include "pool/circuit_breaker.h"

#include <fmt/format.h>

namespace poolguard::pool {

const char* to_string(BreakerState state) {
    switch (state) {
        case BreakerState::kClosed:
            return "closed";
        case BreakerState::kOpen:
            return "open";
        case BreakerState::kHalfOpen:
            return "half-open";
    }
    return "closed";
}

void CircuitBreaker::configure(const BreakerSettings& settings) {
    settings_ = settings;
    if (!settings_.enabled && state_ != BreakerState::kClosed) {
        state_ = BreakerState::kClosed;
        probing_ = false;
        ++generation_;
    }
}

void CircuitBreaker::open(TimePoint now, std::string reason, Cause cause) {
    if (!settings_.enabled) return;
    if (state_ == BreakerState::kOpen) return;
    state_ = BreakerState::kOpen;
    changed_at_ = now;
    reason_ = std::move(reason);
    cause_ = cause;
    probing_ = false;
    ++opens_;
    ++generation_;
}

void CircuitBreaker::close(TimePoint now) {
    consecutive_failures_ = 0;
    if (state_ == BreakerState::kClosed) return;
    state_ = BreakerState::kClosed;
    changed_at_ = now;
    probing_ = false;
    ++generation_;
}

BreakerState CircuitBreaker::advance(TimePoint now) {
    if (state_ == BreakerState::kOpen && now - changed_at_ >= settings_.open_time) {
        state_ = BreakerState::kHalfOpen;
        changed_at_ = now;
        probing_ = false;
        ++generation_;
    }
    return state_;
}

void CircuitBreaker::on_login_failed(TimePoint now, bool too_many, const std::string& message) {
    ++consecutive_failures_;
    advance(now);
    if (state_ == BreakerState::kHalfOpen) {
        open(now, std::string("probe login failed") + (too_many ? " (53300): " : ": ") + message,
             too_many ? Cause::kTooMany : cause_);
        return;
    }
    if (too_many) {
        open(now, "database refused a login (53300): " + message, Cause::kTooMany);
        return;
    }
    if (settings_.login_failures > 0 && consecutive_failures_ >= settings_.login_failures)
        open(now, fmt::format("{} consecutive server logins failed: {}", consecutive_failures_, message),
             Cause::kLoginFailures);
}

void CircuitBreaker::on_login_ok(TimePoint now) {
    if (restarting_) {
        restarting_ = false;
        outage_ended_ = now;
        last_outage_ =
            fmt::format("database unreachable for {:.1f} s ({})",
                        std::chrono::duration<double>(now - outage_since_).count(), outage_reason_);
        ++generation_;
    }
    close(now);
}

void CircuitBreaker::on_outage(TimePoint now, const std::string& message) {
    if (!restarting_) {
        restarting_ = true;
        outage_since_ = now;
        ++outages_;
        ++generation_;
    }
    outage_reason_ = message;
    // A half-open probe that meets an outage: the database is restarting, not full; let clients queue.
    if (state_ == BreakerState::kHalfOpen) close(now);
}

void CircuitBreaker::on_wait(TimePoint now, std::chrono::microseconds waited) {
    // Clients wait for a restarting database on purpose; those waits say nothing about exhaustion, also
    // for a while after the outage (the queue it built is being served).
    if (restarting_ || (outages_ > 0 && now - outage_ended_ < settings_.wait_bound)) return;
    if (settings_.wait_bound.count() <= 0 || waited < settings_.wait_bound) return;
    advance(now);
    if (state_ == BreakerState::kOpen) return;
    open(now,
         fmt::format("a client waited {:.1f} s for a server (breaker_wait_bound {:.1f} s)",
                     static_cast<double>(waited.count()) / 1e6,
                     static_cast<double>(settings_.wait_bound.count()) / 1e6),
         Cause::kWait);
}

void CircuitBreaker::on_served(TimePoint now, std::chrono::microseconds waited) {
    if (advance(now) != BreakerState::kHalfOpen) return;
    if (settings_.wait_bound.count() <= 0 || waited < settings_.wait_bound) close(now);
}

}  // namespace poolguard::pool
