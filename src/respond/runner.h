// Owns one database instance's responder pass on the control plane's evaluator thread: feeds the
// ResponderEngine with the latest snapshot and the modes from the guard registry, carries out the decisions
// (signals through the given functions; pooler-side actions posted to the io thread), and writes one journal
// line per action, dry-run, protection and failure, with the evidence that triggered it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.h"
#include "respond/responder.h"

namespace poolguard::respond {

// The journal line of a decision: kind "respond_<responder>", severity = outcome ("acted", "dry-run",
// "failed", or "skipped" when the io thread found the session had moved on), summary, responder, mode,
// action, pid, evidence {age_s, limit_s, pid}, attribution.
nlohmann::json decision_entry(const Decision& d, const std::string& outcome, const std::string& detail,
                              std::chrono::system_clock::time_point at);

class ResponderRunner {
  public:
    struct Hooks {
        std::function<Status(int64_t pid)> cancel_backend;     // blocking; evaluator thread
        std::function<Status(int64_t pid)> terminate_backend;  // blocking; evaluator thread
        // close_pool_server / end_client: carried out on the io thread, which calls `done` there with whether
        // it acted and what it found (the session may have moved on since the snapshot).
        std::function<void(const Decision&, std::function<void(bool acted, std::string detail)> done)>
            post_to_io;
        std::function<void(const nlohmann::json&)> journal;
    };
    ResponderRunner(std::string target, ResponderSettings settings, Hooks hooks);

    // One pass over a fresh snapshot of this instance.
    void run(const dbview::Snapshot& snapshot, const std::vector<PooledServer>& servers, double now_s);

    // "kill_idle_after 300 s, max 10/min", for SHOW GUARD.
    static std::string describe(ResponderKind kind, const ResponderSettings& s);

  private:
    // Outcomes the io thread reported; the next run() journals them (the journal writes to disk, which the
    // io thread must not wait for).
    struct IoOutcome {
        Decision decision;
        bool acted = false;
        std::string detail;
        std::chrono::system_clock::time_point at;
    };
    struct IoOutcomes {
        std::mutex mutex;
        std::vector<IoOutcome> done;
    };
    // Counts, notes for SHOW GUARD, logs and journals one outcome ("acted", "dry-run", "failed", "skipped").
    void record(const Decision& d, const std::string& outcome, const std::string& detail,
                std::chrono::system_clock::time_point at);
    void journal_io_outcomes();

    std::string target_;
    ResponderEngine engine_;
    Hooks hooks_;
    std::shared_ptr<IoOutcomes> io_outcomes_ = std::make_shared<IoOutcomes>();
};

}  // namespace poolguard::respond
