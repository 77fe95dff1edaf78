// Owns the ops subcommands of the poolguard binary (diagnose, recover, watch, logscan): their options, their
// registration with CLI11, and their entry points. Exit codes: 0 done, 1 some action failed, 2 cannot start
// (bad arguments, bad DSN, cannot connect).
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace poolguard::ops {

struct DiagnoseOptions {
    std::string dsn;
    bool json = false;
    double watch_s = 0;  // 0 = once
};

struct RecoverOptions {
    std::string dsn;
    std::string kill_idle, cancel_long, terminate_long, kill_leak;  // durations as typed; "" = rule off
    bool execute = false;
    std::vector<std::string> protect_users, protect_apps;
};

struct WatchOptions {
    std::string dsn;
    double interval_s = 5;
    std::string alertmanager_url;
    double threshold_pct = 90;
};

struct LogscanOptions {
    bool json = false;
    std::vector<std::string> files;  // empty = stdin
};

int run_diagnose(const DiagnoseOptions& options);
int run_recover(const RecoverOptions& options);
int run_watch(const WatchOptions& options);
int run_logscan(const LogscanOptions& options);

// Adds the four subcommands to `app`. After parsing, call the returned function: it runs the subcommand
// that was given and returns its exit code, or nullopt when none of these was given.
std::function<std::optional<int>()> register_ops_commands(CLI::App& app);

}  // namespace poolguard::ops
