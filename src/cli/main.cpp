// Owns the poolguard command line: `poolguard serve CONFIG.ini`, the ops commands (src/ops), --version,
// --help.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "common/logging.h"
#include "config/config.h"
#include "control/control_plane.h"
#include "control/journal.h"
#include "drill/drill.h"
#include "drill/incident.h"
#include "ops/commands.h"
#include "session/proxy.h"

namespace {

int serve(const std::string& config_path, int verbose) {
    using namespace poolguard;
    auto loaded = config::load_config(config_path);
    if (!loaded) {
        std::fprintf(stderr, "poolguard: %s\n", loaded.error().message.c_str());
        return 1;
    }
    auto cfg = std::make_shared<config::Config>(std::move(loaded->config));
    if (verbose > cfg->verbose) cfg->verbose = verbose;
    setup_logging(cfg->logfile, cfg->verbose);
    for (const auto& w : loaded->warnings)
        spdlog::warn("{}:{}: {}", w.file, w.line, w.message);

    std::signal(SIGPIPE, SIG_IGN);
    // Every client and server connection is a descriptor: use the hard limit, and say when it is too low.
    if (rlimit lim{}; ::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        if (lim.rlim_cur < lim.rlim_max) {
            lim.rlim_cur = lim.rlim_max;
            ::setrlimit(RLIMIT_NOFILE, &lim);
        }
        ::getrlimit(RLIMIT_NOFILE, &lim);
        const auto needed =
            static_cast<rlim_t>(cfg->max_client_conn) + 64 +
            static_cast<rlim_t>(cfg->default_pool_size) * std::max<size_t>(cfg->databases.size(), 1);
        if (lim.rlim_cur < needed)
            spdlog::warn(
                "file descriptor limit {} is below max_client_conn + pools ({}); raise it (ulimit -n)",
                lim.rlim_cur, needed);
    }
    asio::io_context io(1);
    session::Proxy proxy(io, cfg);
    // Signals are caught before the listeners open, so a SIGTERM right after "listening" is graceful.
    asio::signal_set signals(io, SIGHUP, SIGTERM, SIGINT);
    std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int sig) {
        if (ec) return;
        switch (sig) {
            case SIGHUP:
                spdlog::info("got SIGHUP: reloading configuration");
                proxy.reload();
                break;
            case SIGTERM:
                proxy.shutdown_graceful();
                break;
            case SIGINT:
                spdlog::info("got SIGINT: exiting now");
                proxy.shutdown_now();
                return;
        }
        signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);
    if (auto st = proxy.start(); !st) {
        spdlog::error("{}", st.error().message);
        std::fprintf(stderr, "poolguard: %s\n", st.error().message.c_str());
        return 1;
    }
    // Control plane (issue 5): its own threads; refuses to start on a bad journal_file / http_listen.
    std::unique_ptr<control::ControlPlane> control_plane;
    if (control::ControlPlane::wanted(*cfg)) {
        control_plane = std::make_unique<control::ControlPlane>(io, proxy, cfg);
        if (auto st = control_plane->start(); !st) {
            spdlog::error("{}", st.error().message);
            std::fprintf(stderr, "poolguard: %s\n", st.error().message.c_str());
            return 1;
        }
    }
    spdlog::info("poolguard {} started (config {})", POOLGUARD_VERSION, config_path);

    io.run();
    if (control_plane) control_plane->stop();
    spdlog::info("poolguard stopped");
    spdlog::default_logger()->flush();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "poolguard — a PostgreSQL connection pooler that keeps the database from running out of connections"};
    app.set_version_flag("--version", std::string("poolguard ") + POOLGUARD_VERSION);
    app.require_subcommand(1);

    std::string config_path;
    int verbose = 0;
    auto* serve_cmd =
        app.add_subcommand("serve", "run the pooler with a pgbouncer.ini-compatible configuration");
    serve_cmd->add_option("config", config_path, "configuration file (pgbouncer.ini format)")->required();
    serve_cmd->add_flag("-v,--verbose", verbose, "more log output (repeat for more)");

    std::string journal_path;
    auto* journal_cmd = app.add_subcommand("journal", "print an incident journal (journal_file) readably");
    journal_cmd->add_option("file", journal_path, "the journal_file of a running or past poolguard")
        ->required();

    poolguard::drill::Options drill;
    auto* drill_cmd = app.add_subcommand(
        "drill", "play a connection-exhaustion scenario against a server and summarise what clients saw");
    drill_cmd->add_option("--dsn", drill.conninfo, "libpq conninfo of the target (database or poolguard)")
        ->required();
    drill_cmd->add_option("--scenario", drill.scenario, "gradual | spike | leak | web | incident")
        ->check(CLI::IsMember({"gradual", "spike", "leak", "web", "incident"}));
    drill_cmd->add_option("--duration", drill.duration_s, "seconds (default 30)");
    drill_cmd->add_option("--rate", drill.rate, "web queries per second (default 20)");
    drill_cmd->add_option("--scale", drill.scale, "multiplies the connection counts (default 1)");
    bool no_web = false;
    drill_cmd->add_flag("--no-web", no_web, "no steady web traffic alongside");
    drill_cmd->add_flag("--web-reconnect", drill.web_reconnect,
                        "each web request opens its own connection (connect, one query, close)");
    drill_cmd->add_option("--scenario-dsn", drill.scenario_conninfo,
                          "where the scenario's own clients connect (default: --dsn)");
    drill_cmd->add_option("--lead-in", drill.lead_in_s,
                          "seconds of web traffic alone before the scenario starts (default: spike 1/4 of "
                          "the duration, others 0)");
    drill_cmd->add_option("--slo-ms", drill.slo_ms,
                          "web p99 bound per second for time to recover (default 250)");
    std::string drill_json;
    drill_cmd->add_option("--json", drill_json,
                          "also write the outcome, timelines and time to recover as JSON");
    poolguard::drill::IncidentOptions incident;  // --scenario incident (the headline incident)
    drill_cmd->add_option("--label", incident.label, "incident: the target's name in the table");
    drill_cmd->add_option("--web-rate", incident.web_rate,
                          "incident: requests/s of web-a..c together (default 600; web-d adds a third)");
    drill_cmd->add_option("--timeout", incident.timeout_s,
                          "incident: web request timeout in seconds (default 5)");
    drill_cmd->add_option("--web-d-at", incident.web_d_at,
                          "incident: second web-d starts (default: half-way)");
    drill_cmd->add_option("--batch-connections", incident.batch_connections,
                          "incident: connections of each of the 5 batch jobs (default 20)");
    drill_cmd->add_option("--bulk-at", incident.bulk_at,
                          "incident: second the bulk reports start (default: 1/4)");
    auto run_ops_command = poolguard::ops::register_ops_commands(app);  // diagnose, recover, watch, logscan

    CLI11_PARSE(app, argc, argv);
    if (drill_cmd->parsed()) {
        drill.web = !no_web;
        if (drill.scenario == "incident") {
            incident.conninfo = drill.conninfo;
            incident.duration_s = drill_cmd->count("--duration") ? drill.duration_s : 60;
            const auto rows = poolguard::drill::run_incident(incident);
            std::printf("%s", poolguard::drill::format_incident_table(incident.label, rows).c_str());
            return 0;
        }
        const auto report = poolguard::drill::run_report(drill);
        std::printf("%s", poolguard::drill::format_summary(report.roles).c_str());
        if (!drill_json.empty()) {
            std::ofstream out(drill_json);
            out << poolguard::drill::to_json(report).dump(1) << '\n';
            if (!out) {
                std::fprintf(stderr, "poolguard: cannot write %s\n", drill_json.c_str());
                return 1;
            }
        }
        return 0;
    }
    if (serve_cmd->parsed()) return serve(config_path, verbose);
    if (journal_cmd->parsed()) {
        std::ifstream in(journal_path);
        if (!in) {
            std::fprintf(stderr, "poolguard: cannot read %s\n", journal_path.c_str());
            return 1;
        }
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) std::printf("%s\n", poolguard::control::format_journal_line(line).c_str());
        return 0;
    }
    if (auto exit_code = run_ops_command()) return *exit_code;
    return 0;
}
