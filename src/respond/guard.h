// Owns the process-wide guard registry: the run-time modes of the responders (off / dry-run / on, changed by
// the admin console's SET and by /api/v1/guard), their action counters (for /metrics), the detectors' last
// findings as SHOW GUARD rows, and the hook through which other components (priority classes, the circuit
// breaker) add their own SHOW GUARD rows. Thread-safe; reached through guard().
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"

namespace poolguard::respond {

enum class Mode { off, dry_run, on };
std::string to_string(Mode mode);
// "off", "dry-run" (also "dry_run", "dryrun"), "on"; case-insensitive.
std::optional<Mode> parse_mode(const std::string& text);

enum class ResponderKind { terminate_idle, cancel_long, end_leaks };
inline constexpr std::array<ResponderKind, 3> kAllResponders = {
    ResponderKind::terminate_idle, ResponderKind::cancel_long, ResponderKind::end_leaks};
// "terminate_idle", "cancel_long", "end_leaks".
std::string to_string(ResponderKind kind);
// The configuration / SET key of a responder's mode: "respond_terminate_idle", ...
std::string mode_key(ResponderKind kind);

// One SHOW GUARD row (and one element of GET /api/v1/guard).
struct GuardRow {
    std::string component;  // "detector", "responder", "class", "breaker", ...
    std::string name;       // detector kind + subject, responder name, class name, ...
    std::string mode;       // responder mode; "" for rows without one
    std::string state;      // detector severity, "idle"/"acting", breaker state, ...
    std::string detail;     // summary, last action, settings
};

class GuardRegistry {
  public:
    Mode mode(ResponderKind kind) const { return modes_[index(kind)].load(std::memory_order_relaxed); }
    void set_mode(ResponderKind kind, Mode mode) {
        modes_[index(kind)].store(mode, std::memory_order_relaxed);
    }
    // SET respond = MODE (all three) or SET respond_<name> = MODE. An Error (SQLSTATE 22023 / 42704) for a
    // bad value or key; is_guard_key tells whether the key belongs here at all.
    static bool is_guard_key(const std::string& key);
    Status set(const std::string& key, const std::string& value);

    // Counters: one per (responder, outcome) where outcome is "acted", "dry_run", "rate_limited", "failed",
    // "spared".
    void count(ResponderKind kind, const std::string& outcome, uint64_t n = 1);
    std::map<std::pair<std::string, std::string>, uint64_t> counters() const;
    // The last action or dry-run line of each responder, for SHOW GUARD.
    void note_last(ResponderKind kind, const std::string& line);

    // The evaluator's current detector rows (replaced as a whole each evaluation).
    void set_detector_rows(std::vector<GuardRow> rows);
    // Other components add rows under a name (e.g. "classes", "breaker"); a provider is called on the
    // thread that renders SHOW GUARD or /api/v1/guard, so it must be thread-safe. Same name replaces.
    void register_rows(const std::string& name, std::function<std::vector<GuardRow>()> provider);
    void unregister_rows(const std::string& name);
    // Detectors, then responders (with `responder_detail` per responder, the settings), then the rows of
    // every registered provider in name order.
    std::vector<GuardRow> rows() const;
    void set_responder_detail(ResponderKind kind, const std::string& detail);

    // Whether a control plane runs the responders; SHOW GUARD says so when none does (the modes are then
    // kept but nothing acts).
    void set_running(bool running) { running_.store(running, std::memory_order_relaxed); }
    bool running() const { return running_.load(std::memory_order_relaxed); }

    // Back to modes `initial` and no counters/rows (tests; a freshly started control plane).
    void reset(Mode initial = Mode::dry_run);

  private:
    static size_t index(ResponderKind kind) { return static_cast<size_t>(kind); }
    std::array<std::atomic<Mode>, 3> modes_{Mode::dry_run, Mode::dry_run, Mode::dry_run};
    std::atomic<bool> running_{false};
    mutable std::mutex mutex_;
    std::map<std::pair<std::string, std::string>, uint64_t> counters_;
    std::array<std::string, 3> last_{}, detail_{};
    std::vector<GuardRow> detector_rows_;
    std::map<std::string, std::function<std::vector<GuardRow>()>> providers_;
};

GuardRegistry& guard();

// Prometheus text for the responders: poolguard_responder_mode{responder} (0 off, 1 dry-run, 2 on) and
// poolguard_responder_actions_total{responder,outcome}.
std::string render_guard_metrics();

}  // namespace poolguard::respond
