// Owns `poolguard recover`: sample, plan with the shared recovery planner, then list (dry run) or carry out
// each action, one line per session.
#include <fmt/format.h>

#include <cstdio>

#include "dbview/any_sampler.h"
#include "dbview/duration.h"
#include "dbview/recover_plan.h"
#include "ops/commands.h"
#include "ops/connect_error.h"

namespace poolguard::ops {

namespace {

std::string sql_for(dbview::Engine engine, dbview::ActionKind kind, int64_t id) {
    if (engine == dbview::Engine::mysql)
        return kind == dbview::ActionKind::cancel ? fmt::format("KILL QUERY {}", id)
                                                  : fmt::format("KILL {}", id);
    return kind == dbview::ActionKind::cancel ? fmt::format("SELECT pg_cancel_backend({})", id)
                                              : fmt::format("SELECT pg_terminate_backend({})", id);
}

std::string who(const dbview::RecoverAction& a) {
    return fmt::format("user={} app={} from={}", a.user.empty() ? "-" : a.user,
                       a.application.empty() ? "-" : a.application,
                       a.client_addr.empty() ? "local" : a.client_addr);
}

}  // namespace

int run_recover(const RecoverOptions& options) {
    auto dsn = dbview::parse_dsn(options.dsn);
    if (!dsn) {
        std::fputs(explain_error(dsn.error(), nullptr).c_str(), stderr);
        return 2;
    }
    dbview::RecoverPolicy policy;
    policy.protect_users = options.protect_users;
    policy.protect_apps = options.protect_apps;
    struct Rule {
        const char* flag;
        const std::string& text;
        std::optional<double>& limit;
    };
    const Rule rules[] = {{"--kill-idle", options.kill_idle, policy.kill_idle_after_s},
                          {"--cancel-long", options.cancel_long, policy.cancel_long_after_s},
                          {"--terminate-long", options.terminate_long, policy.terminate_long_after_s},
                          {"--kill-leak", options.kill_leak, policy.kill_leak_after_s}};
    bool any_rule = false;
    for (const auto& r : rules) {
        if (r.text.empty()) continue;
        auto seconds = dbview::parse_duration_seconds(r.text);
        if (!seconds) {
            std::fprintf(stderr, "poolguard: %s: %s\n", r.flag, seconds.error().message.c_str());
            return 2;
        }
        r.limit = *seconds;
        any_rule = true;
    }
    if (!any_rule) {
        std::fputs(
            "poolguard: recover needs at least one rule\n  what to do: add e.g. --kill-idle 5m --cancel-long "
            "2m "
            "(--terminate-long, --kill-leak too); nothing is changed without --execute\n",
            stderr);
        return 2;
    }
    auto sampler = dbview::open_sampler(*dsn);
    if (!sampler) {
        std::fputs(explain_error(sampler.error(), &*dsn).c_str(), stderr);
        return 2;
    }
    auto snap = (*sampler)->sample();
    if (!snap) {
        std::fputs(explain_error(snap.error(), &*dsn).c_str(), stderr);
        return 2;
    }
    const auto plan = dbview::plan_recovery(*snap, policy);
    const char* id_word = dsn->engine == dbview::Engine::mysql ? "thread" : "pid";
    std::printf("%s %s at %s: %d/%d usable slots in use\n",
                dsn->engine == dbview::Engine::mysql ? "MySQL/MariaDB" : "PostgreSQL",
                snap->server_version.c_str(), dsn->redacted().c_str(), snap->used(), snap->usable());
    if (!options.execute) std::printf("DRY RUN: nothing is changed; run again with --execute to do this.\n");
    int failed = 0, cancels = 0, terminates = 0, cancelled = 0, terminated = 0;
    for (const auto& a : plan.actions) {
        (a.kind == dbview::ActionKind::cancel ? cancels : terminates)++;
        const std::string sql = sql_for(dsn->engine, a.kind, a.session_id);
        if (!options.execute) {
            std::printf("would %-9s %s %lld  %s  %s  [%s]\n", to_string(a.kind).c_str(), id_word,
                        static_cast<long long>(a.session_id), who(a).c_str(), a.reason.c_str(), sql.c_str());
            continue;
        }
        auto st = a.kind == dbview::ActionKind::cancel ? (*sampler)->cancel_backend(a.session_id)
                                                       : (*sampler)->terminate_backend(a.session_id);
        if (st) {
            (a.kind == dbview::ActionKind::cancel ? cancelled : terminated)++;
            std::printf("%-10s %s %lld  %s  %s  [%s]\n",
                        a.kind == dbview::ActionKind::cancel ? "cancelled" : "terminated", id_word,
                        static_cast<long long>(a.session_id), who(a).c_str(), a.reason.c_str(), sql.c_str());
        } else {
            ++failed;
            std::printf("FAILED %s %s %lld: %s\n", to_string(a.kind).c_str(), id_word,
                        static_cast<long long>(a.session_id), st.error().message.c_str());
        }
    }
    for (const auto& s : plan.spared)
        std::printf("spared    %s %lld  user=%s app=%s  (%s) although %s\n", id_word,
                    static_cast<long long>(s.session_id), s.user.empty() ? "-" : s.user.c_str(),
                    s.application.empty() ? "-" : s.application.c_str(), s.protection.c_str(),
                    s.would_have.c_str());
    if (plan.actions.empty())
        std::printf("Nothing to do: no session is past the given limits.\n");
    else if (options.execute)
        std::printf("Done: %d terminated, %d cancelled, %d failed, %zu spared.\n", terminated, cancelled,
                    failed, plan.spared.size());
    else
        std::printf("Would terminate %d and cancel %d session(s); %zu spared by protections.\n", terminates,
                    cancels, plan.spared.size());
    return failed > 0 ? 1 : 0;
}

}  // namespace poolguard::ops
