// Owns the CLI11 registration of the ops subcommands and the dispatch to their run functions.
#include "ops/commands.h"

#include <memory>

namespace poolguard::ops {

std::function<std::optional<int>()> register_ops_commands(CLI::App& app) {
    struct All {
        DiagnoseOptions diagnose;
        RecoverOptions recover;
        WatchOptions watch;
        LogscanOptions logscan;
    };
    auto all = std::make_shared<All>();

    auto* diagnose = app.add_subcommand("diagnose", "the 30-second assessment of a database's connections");
    diagnose->add_option("dsn", all->diagnose.dsn, "postgres://user:pass@host:port/db or mysql://...")
        ->required();
    diagnose->add_flag("--json", all->diagnose.json, "one JSON object (one per line with --watch)");
    diagnose->add_option("--watch", all->diagnose.watch_s, "sample every SECONDS and classify the pattern")
        ->check(CLI::PositiveNumber);

    auto* recover =
        app.add_subcommand("recover", "end idle / long-running / leaked sessions (dry run unless --execute)");
    recover->add_option("dsn", all->recover.dsn, "postgres://... or mysql://...")->required();
    recover->add_option("--kill-idle", all->recover.kill_idle,
                        "terminate sessions idle longer than DURATION (5m)");
    recover->add_option("--cancel-long", all->recover.cancel_long,
                        "cancel queries running longer than DURATION");
    recover->add_option("--terminate-long", all->recover.terminate_long,
                        "terminate sessions whose query runs longer than DURATION");
    recover->add_option("--kill-leak", all->recover.kill_leak,
                        "terminate sessions idle in transaction longer than DURATION");
    recover->add_flag("--execute", all->recover.execute, "act (default: only list what would be done)");
    recover->add_option("--protect-user", all->recover.protect_users, "never touch users matching GLOB")
        ->allow_extra_args(false);
    recover->add_option("--protect-app", all->recover.protect_apps, "never touch applications matching GLOB")
        ->allow_extra_args(false);

    auto* watch = app.add_subcommand("watch", "live view: utilization, states, trend and forecast");
    watch->add_option("dsn", all->watch.dsn, "postgres://... or mysql://...")->required();
    watch->add_option("--interval", all->watch.interval_s, "seconds between samples (default 5)")
        ->check(CLI::PositiveNumber);
    watch->add_option("--alertmanager", all->watch.alertmanager_url,
                      "push an alert to this Alertmanager (http://host:9093) past the threshold");
    watch
        ->add_option("--threshold", all->watch.threshold_pct,
                     "alert threshold in % of usable slots (default 90)")
        ->check(CLI::Range(1.0, 1000.0));

    auto* logscan =
        app.add_subcommand("logscan", "classify connection-exhaustion errors in logs (stdin when no FILE)");
    logscan->add_flag("--json", all->logscan.json, "one JSON object");
    logscan->add_option("files", all->logscan.files, "log files");

    return [all, diagnose, recover, watch, logscan]() -> std::optional<int> {
        if (diagnose->parsed()) return run_diagnose(all->diagnose);
        if (recover->parsed()) return run_recover(all->recover);
        if (watch->parsed()) return run_watch(all->watch);
        if (logscan->parsed()) return run_logscan(all->logscan);
        return std::nullopt;
    };
}

}  // namespace poolguard::ops
