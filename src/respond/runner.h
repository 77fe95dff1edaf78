// Owns one database instance's responder pass on the control plane's evaluator thread: feeds the
// ResponderEngine with the latest snapshot and the modes from the guard registry, carries out the decisions
// (signals through the given functions; pooler-side actions posted to the io thread), and writes one journal
// line per action, dry-run, protection and failure, with the evidence that triggered it.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/error.h"
#include "respond/responder.h"

namespace poolguard::respond {

// The journal line of a decision: kind "respond_<responder>", severity = outcome ("acted", "dry-run",
// "failed"), summary, responder, mode, action, pid, evidence {age_s, limit_s, pid}, attribution.
nlohmann::json decision_entry(const Decision& d, const std::string& outcome, const std::string& detail,
                              std::chrono::system_clock::time_point at);

class ResponderRunner {
  public:
    struct Hooks {
        std::function<Status(int64_t pid)> cancel_backend;     // blocking; evaluator thread
        std::function<Status(int64_t pid)> terminate_backend;  // blocking; evaluator thread
        std::function<void(const Decision&)> post_to_io;       // close_pool_server / end_client
        std::function<void(const nlohmann::json&)> journal;
    };
    ResponderRunner(std::string target, ResponderSettings settings, Hooks hooks);

    // One pass over a fresh snapshot of this instance.
    void run(const dbview::Snapshot& snapshot, const std::vector<PooledServer>& servers, double now_s);

    // "kill_idle_after 300 s, max 10/min", for SHOW GUARD.
    static std::string describe(ResponderKind kind, const ResponderSettings& s);

  private:
    std::string target_;
    ResponderEngine engine_;
    Hooks hooks_;
};

}  // namespace poolguard::respond
