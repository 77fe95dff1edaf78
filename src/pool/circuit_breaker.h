// Owns CircuitBreaker: the sans-I/O state machine that decides, per database, whether new transactions may
// queue for a server. It opens when the database refuses logins with 53300, when logins keep failing, or
// when a client's wait for a server passes a bound; while open, clients that cannot get an idle server are
// refused at once. After open_time it goes half-open: one probe login is allowed, and its success (or a
// client served within the bound) closes it; a failure opens it again. Time is passed in (tests inject it).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace poolguard::pool {

struct BreakerSettings {
    bool enabled = true;
    std::chrono::microseconds wait_bound{10'000'000};  // a wait this long opens it; 0 = waits never open it
    std::chrono::microseconds open_time{5'000'000};    // how long it stays open before a probe
    int login_failures = 3;                            // consecutive failed logins (not 53300) that open it
};

enum class BreakerState { kClosed, kOpen, kHalfOpen };
const char* to_string(BreakerState state);

class CircuitBreaker {
  public:
    using TimePoint = std::chrono::steady_clock::time_point;

    void configure(const BreakerSettings& settings);
    const BreakerSettings& settings() const { return settings_; }

    // --- events ---
    // A server login failed; `too_many` when the server said 53300 (that opens at once).
    void on_login_failed(TimePoint now, bool too_many, const std::string& message);
    // A server login worked (a half-open probe or any other): closes the breaker.
    void on_login_ok(TimePoint now);
    // A client has waited `waited` for a server and still waits (or timed out).
    void on_wait(TimePoint now, std::chrono::microseconds waited);
    // A waiting client was given a server after `waited`: in half-open, a wait within the bound closes it.
    void on_served(TimePoint now, std::chrono::microseconds waited);
    // A server login failed because the database cannot be reached or is restarting (pool/outage.h): the
    // database is "restarting", not "exhausted". The breaker does not open for it, and waits during it do
    // not open it either; clients wait. A working login ends it (on_login_ok).
    void on_outage(TimePoint now, const std::string& message);

    // --- queries ---
    // Moves open -> half-open when open_time has passed; returns the state at `now`.
    BreakerState advance(TimePoint now);
    BreakerState state() const { return state_; }
    // May a client queue for a server? False only while open (half-open lets clients through).
    bool allows_wait(TimePoint now) { return advance(now) != BreakerState::kOpen; }
    // Half-open and no probe yet: the caller should start one login and report it.
    bool probe_due(TimePoint now) { return advance(now) == BreakerState::kHalfOpen && !probing_; }
    void probe_started() { probing_ = true; }

    const std::string& reason() const { return reason_; }  // why it last opened
    // Restarting: logins fail with an outage error since outage_since().
    bool restarting() const { return restarting_; }
    TimePoint outage_since() const { return outage_since_; }
    const std::string& outage_reason() const { return outage_reason_; }
    // The last outage that ended: "database unreachable for 1.4 s (...)"; empty before the first.
    const std::string& last_outage() const { return last_outage_; }
    uint64_t outages() const { return outages_; }
    // The last opening was for failed logins other than 53300 (not for a full database or long waits).
    bool opened_by_login_failures() const { return cause_ == Cause::kLoginFailures; }
    uint64_t opens() const { return opens_; }  // times it opened (also re-opens)
    TimePoint changed_at() const { return changed_at_; }
    // Bumped on every state change, so an observer (journal, logs) can notice transitions cheaply.
    uint64_t generation() const { return generation_; }

  private:
    enum class Cause { kNone, kTooMany, kLoginFailures, kWait };
    void open(TimePoint now, std::string reason, Cause cause);
    void close(TimePoint now);

    BreakerSettings settings_;
    BreakerState state_ = BreakerState::kClosed;
    TimePoint changed_at_{};
    std::string reason_;
    Cause cause_ = Cause::kNone;
    int consecutive_failures_ = 0;
    bool probing_ = false;
    uint64_t opens_ = 0;
    bool restarting_ = false;
    TimePoint outage_since_{};
    TimePoint outage_ended_{};
    std::string outage_reason_;
    std::string last_outage_;
    uint64_t outages_ = 0;
    uint64_t generation_ = 0;
};

}  // namespace poolguard::pool
