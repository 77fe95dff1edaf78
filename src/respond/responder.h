// Owns the responders' decisions, sans I/O: given a database Snapshot, what poolguard itself holds on that
// database, the modes and the settings, which backends to cancel or terminate, which of poolguard's idle
// servers to close and which of its clients to end — with the evidence, the protections that spared
// sessions, per-responder rate limits (actions per minute) and the cancel → terminate escalation after a
// grace period. Rules and protections come from dbview::plan_recovery. The caller executes the decisions.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "dbview/recover_plan.h"
#include "dbview/snapshot.h"
#include "respond/guard.h"

namespace poolguard::respond {

struct ResponderSettings {
    double kill_idle_after_s = 300;
    double cancel_long_after_s = 120;
    double cancel_grace_s = 10;  // a cancelled query still running this much later is terminated
    double kill_leak_after_s = 300;
    int max_actions_per_minute = 10;                // per responder; dry-run decisions count too
    std::vector<std::string> protect_users;         // globs
    std::vector<std::string> protect_applications;  // globs
};

// Application names of poolguard's own control connections: never touched.
inline constexpr const char* kOwnApplicationGlob = "poolguard-*";

// One of poolguard's own server connections, as the io thread last saw it.
struct PooledServer {
    int64_t backend_pid = 0;
    std::string database;  // the pool's database (poolguard name) and login user
    std::string user;
    bool idle_in_pool = false;  // in the pool's idle list
    int pool_servers = 0;       // servers of its pool (all states)
    int pool_min_size = 0;      // the pool's min_pool_size
    uint64_t client_id = 0;     // the linked client, 0 when none
};

enum class ActionType {
    cancel_backend,     // pg_cancel_backend
    terminate_backend,  // pg_terminate_backend
    close_pool_server,  // poolguard closes one of its own idle servers (io thread)
    end_client,         // poolguard ends its client with an error saying why (io thread); its server is
                        // rolled back and reused
};
std::string to_string(ActionType type);

struct Decision {
    ResponderKind responder = ResponderKind::terminate_idle;
    Mode mode = Mode::dry_run;  // dry_run: journal only
    ActionType type = ActionType::terminate_backend;
    int64_t pid = 0;
    uint64_t client_id = 0;  // end_client
    std::string database;    // the backend's database; for close_pool_server the pool's
    std::string user, application, client_addr, query;
    std::string reason;          // "idle for 6m12s (limit 5m00s)"
    std::string client_message;  // end_client: the error text the client gets
    double age_s = 0;            // the age the rule compared
    double limit_s = 0;
};

struct Spare {
    ResponderKind responder;
    int64_t pid = 0;
    std::string protection;
    std::string would_have;
    std::string user, application;
};

struct Decisions {
    std::vector<Decision> actions;       // to carry out (mode on) or journal as dry-run, in order
    std::vector<Decision> rate_limited;  // held back by max_actions_per_minute (retried next pass)
    std::vector<Spare> spared;           // newly spared (reported once per episode)
};

struct Modes {
    Mode terminate_idle = Mode::dry_run, cancel_long = Mode::dry_run, end_leaks = Mode::dry_run;
    Mode of(ResponderKind kind) const;
};

// State across passes for one database instance: what was already decided per backend and episode (so a
// session is acted on or reported once, not every sample), cancel times for the grace escalation, and the
// rate limiter's window.
class ResponderEngine {
  public:
    explicit ResponderEngine(ResponderSettings settings) : settings_(std::move(settings)) {}

    // `now_s` is a steady clock in seconds. `servers` are poolguard's own server connections to this
    // instance (matched to sessions by backend pid and user).
    Decisions decide(const dbview::Snapshot& snapshot, const std::vector<PooledServer>& servers,
                     const Modes& modes, double now_s);

    const ResponderSettings& settings() const { return settings_; }

  private:
    struct Memory {
        double episode_start = 0;  // now - age: which idle period / query this is
        double decided_at = 0;
        bool escalated = false;
        bool spared = false;
        Mode mode = Mode::dry_run;  // the mode the decision was made in
    };
    bool take_token(ResponderKind kind, double now_s);
    bool same_episode(const Memory& m, double episode_start) const;

    ResponderSettings settings_;
    std::map<std::pair<ResponderKind, int64_t>, Memory> memory_;
    std::map<ResponderKind, std::deque<double>> window_;  // action times in the last minute
};

}  // namespace poolguard::respond
