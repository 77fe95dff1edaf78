// Owns carrying out and journaling the responders' decisions for one database instance (see runner.h).
#include "respond/runner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "control/journal.h"

namespace poolguard::respond {

namespace {

std::string summary_of(const Decision& d, bool dry_run) {
    std::string what;
    switch (d.type) {
        case ActionType::cancel_backend:
            what = fmt::format("cancel query of pid {}", d.pid);
            break;
        case ActionType::terminate_backend:
            what = fmt::format("terminate pid {}", d.pid);
            break;
        case ActionType::close_pool_server:
            what = fmt::format("close poolguard's idle server pid {} ({}/{})", d.pid, d.database, d.user);
            break;
        case ActionType::end_client:
            what = fmt::format("end poolguard client {} holding pid {}", d.client_id, d.pid);
            break;
    }
    return fmt::format("{}{} (user {}, application '{}'): {}", dry_run ? "would " : "", what, d.user,
                       d.application, d.reason);
}

}  // namespace

nlohmann::json decision_entry(const Decision& d, const std::string& outcome, const std::string& detail,
                              std::chrono::system_clock::time_point at) {
    nlohmann::json j;
    j["time"] = control::format_time(at);
    j["event"] = "respond";
    j["kind"] = "respond_" + to_string(d.responder);
    j["severity"] = outcome;
    j["database"] = d.database;
    j["summary"] = summary_of(d, outcome == "dry-run") + (detail.empty() ? "" : " — " + detail);
    j["responder"] = to_string(d.responder);
    j["mode"] = to_string(d.mode);
    j["action"] = to_string(d.type);
    j["pid"] = d.pid;
    j["reason"] = d.reason;
    if (d.client_id != 0) j["client_id"] = d.client_id;
    if (!d.client_message.empty()) j["client_message"] = d.client_message;
    j["evidence"] = {{"age_s", d.age_s}, {"limit_s", d.limit_s}, {"pid", d.pid}};
    nlohmann::json attribution = nlohmann::json::object();
    attribution["user"] = {d.user};
    attribution["application"] = {d.application};
    if (!d.client_addr.empty()) attribution["address"] = {d.client_addr};
    if (!d.query.empty()) attribution["query"] = {d.query};
    j["attribution"] = attribution;
    return j;
}

std::string ResponderRunner::describe(ResponderKind kind, const ResponderSettings& s) {
    switch (kind) {
        case ResponderKind::terminate_idle:
            return fmt::format("kill_idle_after {} s, max {}/min", s.kill_idle_after_s,
                               s.max_actions_per_minute);
        case ResponderKind::cancel_long:
            return fmt::format("cancel_long_after {} s, grace {} s, max {}/min", s.cancel_long_after_s,
                               s.cancel_grace_s, s.max_actions_per_minute);
        case ResponderKind::end_leaks:
            return fmt::format("kill_leak_after {} s, max {}/min", s.kill_leak_after_s,
                               s.max_actions_per_minute);
    }
    return "";
}

ResponderRunner::ResponderRunner(std::string target, ResponderSettings settings, Hooks hooks)
    : target_(std::move(target)), engine_(std::move(settings)), hooks_(std::move(hooks)) {}

void ResponderRunner::run(const dbview::Snapshot& snapshot, const std::vector<PooledServer>& servers,
                          double now_s) {
    auto& g = guard();
    const Modes modes{g.mode(ResponderKind::terminate_idle), g.mode(ResponderKind::cancel_long),
                      g.mode(ResponderKind::end_leaks)};
    journal_io_outcomes();  // what the io thread did since the last pass
    const auto decisions = engine_.decide(snapshot, servers, modes, now_s);
    const auto now = std::chrono::system_clock::now();
    for (const auto& s : decisions.spared) {
        g.count(s.responder, "spared");
        nlohmann::json j;
        j["time"] = control::format_time(now);
        j["event"] = "respond";
        j["kind"] = "respond_" + to_string(s.responder);
        j["severity"] = "spared";
        j["database"] = target_;
        j["summary"] = fmt::format("spared pid {} (user {}, application '{}'): {}; would have acted: {}",
                                   s.pid, s.user, s.application, s.protection, s.would_have);
        j["responder"] = to_string(s.responder);
        j["pid"] = s.pid;
        j["protection"] = s.protection;
        j["evidence"] = {{"pid", s.pid}};
        hooks_.journal(j);
    }
    for (const auto& d : decisions.rate_limited)
        g.count(d.responder, "rate_limited");
    if (!decisions.rate_limited.empty())
        spdlog::warn("responders on {}: {} action(s) held back by max_actions_per_minute = {}", target_,
                     decisions.rate_limited.size(), engine_.settings().max_actions_per_minute);
    for (const auto& d : decisions.actions) {
        if (d.mode == Mode::dry_run) {
            record(d, "dry-run", "", now);
            continue;
        }
        Status st;
        switch (d.type) {
            case ActionType::cancel_backend:
                st = hooks_.cancel_backend(d.pid);
                break;
            case ActionType::terminate_backend:
                st = hooks_.terminate_backend(d.pid);
                break;
            case ActionType::close_pool_server:
            case ActionType::end_client:
                // Journaled when the io thread says what it did, not before.
                hooks_.post_to_io(d, [outcomes = io_outcomes_, d](bool acted, std::string detail) {
                    std::lock_guard lock(outcomes->mutex);
                    outcomes->done.push_back(
                        IoOutcome{d, acted, std::move(detail), std::chrono::system_clock::now()});
                });
                continue;
        }
        record(d, st ? "acted" : "failed", st ? "" : st.error().message, now);
    }
}

void ResponderRunner::journal_io_outcomes() {
    std::vector<IoOutcome> done;
    {
        std::lock_guard lock(io_outcomes_->mutex);
        done.swap(io_outcomes_->done);
    }
    for (const auto& o : done)
        record(o.decision, o.acted ? "acted" : "skipped", o.detail, o.at);
}

void ResponderRunner::record(const Decision& d, const std::string& outcome, const std::string& detail,
                             std::chrono::system_clock::time_point at) {
    auto& g = guard();
    g.count(d.responder, outcome == "dry-run" ? "dry_run" : outcome);  // metric labels use '_'
    auto j = decision_entry(d, outcome, detail, at);
    const std::string summary = j["summary"].get<std::string>();
    g.note_last(d.responder, summary);
    if (outcome == "acted")
        spdlog::warn("responder {}: {}", to_string(d.responder), summary);
    else if (outcome == "failed")
        spdlog::error("responder {}: {}", to_string(d.responder), summary);
    else
        spdlog::info("responder {} ({}): {}", to_string(d.responder), outcome, summary);
    hooks_.journal(j);
}

}  // namespace poolguard::respond
