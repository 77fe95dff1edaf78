// Owns alerting to Alertmanager: which findings are alerts (labels, annotations, startsAt/endsAt), the
// v2 API payload (sans I/O), and AlertPusher, the thread that POSTs /api/v2/alerts — on every change,
// again every resend interval while firing, and once more with endsAt = now when an alert clears.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "detect/finding.h"

namespace poolguard::control {

using SystemTime = std::chrono::system_clock::time_point;

// The Alertmanager alert name of a detector kind (PoolguardDbUtilization, PoolguardConnectionLeak, ...).
std::string alert_name(const std::string& kind);

// Tracks which findings are firing and builds the payloads to send (sans I/O).
class AlertBook {
  public:
    explicit AlertBook(std::string instance) : instance_(std::move(instance)) {}
    // Records the current findings; those at ok that were firing become resolved.
    void update(const std::vector<detect::Finding>& findings, SystemTime now);
    // The payload for POST /api/v2/alerts: every firing alert (endsAt = now + hold) and every alert
    // resolved since the last successful send (endsAt = its resolve time). Empty array when nothing.
    nlohmann::json payload(SystemTime now, std::chrono::seconds hold) const;
    // A payload built when generation() was `generation` and resolved_count() was `resolved` was
    // delivered: forget those resolved alerts; changes made since stay pending.
    void delivered(uint64_t generation, size_t resolved);
    bool changed() const { return generation_ != sent_generation_; }
    uint64_t generation() const { return generation_; }
    size_t resolved_count() const { return resolved_.size(); }
    size_t firing() const { return firing_.size(); }

  private:
    struct Alert {
        nlohmann::json labels, annotations;
        SystemTime starts_at{}, ends_at{};
    };
    static std::string key_of(const detect::Finding& f);
    std::string instance_;
    std::map<std::string, Alert> firing_;  // by kind|subject
    std::vector<Alert> resolved_;
    uint64_t generation_ = 0, sent_generation_ = 0;
};

// Sends the AlertBook's payload from its own thread. `url` is http://host:port (Alertmanager's base).
class AlertPusher {
  public:
    AlertPusher(std::string url, std::string instance, std::chrono::seconds resend);
    ~AlertPusher();
    void start();
    void stop();
    // The evaluator's findings after each tick.
    void update(const std::vector<detect::Finding>& findings);

  private:
    void run();
    std::string url_;
    std::chrono::seconds resend_;
    std::mutex mutex_;
    std::condition_variable cv_;
    AlertBook book_;
    bool stop_ = false;
    std::thread thread_;
};

}  // namespace poolguard::control
