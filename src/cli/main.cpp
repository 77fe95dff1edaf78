// Owns the poolguard command line: `poolguard serve [-d] [-q] [-v] [-u USER] [-V] CONFIG.ini` (also as
// `poolguard [flags] CONFIG.ini`), signals, the ops commands (src/ops), --version, --help.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <CLI/CLI.hpp>
#include <algorithm>
#include <asio.hpp>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <optional>
#include <vector>

#include "cli/process.h"
#include "cli/systemd_notify.h"
#include "common/logging.h"
#include "config/config.h"
#include "control/control_plane.h"
#include "control/journal.h"
#include "drill/drill.h"
#include "drill/incident.h"
#include "ops/commands.h"
#include "session/proxy.h"

namespace {

// `poolguard serve`'s flags: PgBouncer's command line (-d, -q, -v, -u, -V, -R).
struct ServeOptions {
    std::string config_path;
    int verbose = 0;
    bool quiet = false;
    bool daemon = false;
    bool reboot = false;
    bool version = false;
    std::string user;
};

// STATUS= of READY=1: where poolguard accepts connections.
std::string serving_status(const poolguard::session::Proxy& proxy) {
    std::string where;
    for (const auto& l : proxy.listeners()) {
        if (!where.empty()) where += ", ";
        if (l.addr == "unix")
            where += "unix socket";
        else if (l.addr.find(':') != std::string::npos)
            where += "[" + l.addr + "]:" + std::to_string(l.port);
        else
            where += l.addr + ":" + std::to_string(l.port);
    }
    return "accepting connections on " + where +
           (proxy.socket_activated() ? " (sockets from the service manager)" : "");
}

std::string compat_version() {
    return std::string("poolguard ") + POOLGUARD_VERSION + " (PgBouncer 1.25.2 compatible)";
}

int serve(const ServeOptions& opt) {
    using namespace poolguard;
    // -q: nothing on stderr at all, not even why the start failed (that goes to the logfile), as PgBouncer.
    auto report = [&](const std::string& message) {
        if (spdlog::default_logger_raw()) spdlog::critical("{}", message);
        if (!opt.quiet) std::fprintf(stderr, "poolguard: %s\n", message.c_str());
    };
    if (opt.version) {
        std::printf("%s\n", compat_version().c_str());
        return 0;
    }
    if (opt.config_path.empty()) {
        if (!opt.quiet) std::fprintf(stderr, "poolguard: serve needs a configuration file\n");
        return 1;
    }
    auto loaded = config::load_config(opt.config_path);
    if (!loaded) {
        if (!opt.quiet) std::fprintf(stderr, "poolguard: %s\n", loaded.error().message.c_str());
        return 1;
    }
    auto cfg = std::make_shared<config::Config>(std::move(loaded->config));
    if (opt.verbose > cfg->verbose) cfg->verbose = opt.verbose;
    // -u USER (else the `user` setting, as PgBouncer): assume that identity before opening anything (log,
    // pidfile, sockets). Already that user: nothing to do; another user without root: refused.
    if (const std::string& as = !opt.user.empty() ? opt.user : cfg->user; !as.empty()) {
        if (auto st = process::switch_user(as); !st) {
            if (!opt.quiet) std::fprintf(stderr, "poolguard: %s\n", st.error().message.c_str());
            return 1;
        }
    }
    if (opt.daemon && cfg->pidfile.empty()) {
        if (!opt.quiet) std::fprintf(stderr, "poolguard: daemon mode (-d) needs pidfile configured\n");
        return 1;
    }
    // In the background nothing may go to stderr (it is /dev/null by then): as -q.
    set_stderr_logging(!opt.quiet && !opt.daemon);
    setup_logging(cfg->logfile, cfg->verbose,
                  SyslogSettings{cfg->syslog, cfg->syslog_ident, cfg->syslog_facility});
    for (const auto& w : loaded->warnings)
        spdlog::warn("{}:{}: {}", w.file, w.line, w.message);
    if (opt.reboot)
        spdlog::warn(
            "-R (online reboot) is not supported; starting normally (use so_reuseport for restarts)");

    // -d: the parent returns once the daemon listens (0) or has failed (1), so init scripts see errors.
    std::optional<process::DaemonHandle> daemon;
    if (opt.daemon) {
        auto d = process::daemonize();
        if (!d) {
            report(d.error().message);
            return 1;
        }
        if (d->is_parent) return d->parent_exit_code;
        daemon = std::move(*d);
    }

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
    // Type=notify / notify-reload units (PgBouncer 1.25.2's pgbouncer.service): a reload (SIGHUP, RELOAD)
    // is RELOADING=1 then READY=1 once applied, failed or not; any shutdown STOPPING=1. No-ops without
    // NOTIFY_SOCKET.
    proxy.set_lifecycle_hooks(session::Proxy::LifecycleHooks{
        .reloading = [] { systemd_notify::reloading(); },
        .reloaded =
            [&proxy](const Status& st) {
                // The error says "RELOAD failed, the old configuration stays in force: why".
                systemd_notify::ready(st ? serving_status(proxy) + "; configuration reloaded"
                                         : st.error().message);
            },
        .stopping = [](std::string_view what) { systemd_notify::stopping(what); },
        // STATUS= of `systemctl status`: the stats line every stats_period, as PgBouncer 1.25.2.
        .stats =
            systemd_notify::wanted() ? std::function<void(std::string_view)>(systemd_notify::stats) : nullptr,
    });
    // Signals as PgBouncer 1.23+: SIGINT safe shutdown (transactions finish), SIGTERM super safe shutdown
    // (connected clients finish), either one again during a shutdown: immediate; SIGQUIT immediate; SIGHUP
    // reload; SIGUSR1 PAUSE, SIGUSR2 RESUME. Caught before the listeners open, so a signal right after
    // "listening" is handled.
    asio::signal_set signals(io, SIGHUP, SIGTERM, SIGINT);
    signals.add(SIGQUIT);
    signals.add(SIGUSR1);
    signals.add(SIGUSR2);
    std::function<void(std::error_code, int)> on_signal = [&](std::error_code ec, int sig) {
        if (ec) return;
        switch (sig) {
            case SIGHUP:
                spdlog::info("got SIGHUP: reloading configuration");
                (void)proxy.reload();
                break;
            case SIGTERM:
                spdlog::info("got SIGTERM: super safe shutdown, waiting for all clients to disconnect");
                proxy.begin_shutdown(session::Proxy::ShutdownMode::kWaitForClients);
                break;
            case SIGINT:
                spdlog::info("got SIGINT: safe shutdown, waiting for all server connections to be released");
                proxy.begin_shutdown(session::Proxy::ShutdownMode::kWaitForServers);
                break;
            case SIGQUIT:
                spdlog::info("got SIGQUIT: immediate shutdown");
                proxy.shutdown_now();
                return;
            case SIGUSR1:
                spdlog::info("got SIGUSR1: pausing all databases");
                proxy.set_paused("", true);
                break;
            case SIGUSR2:
                spdlog::info("got SIGUSR2: resuming all databases");
                proxy.set_paused("", false);
                break;
        }
        signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);
    if (auto st = proxy.start(); !st) {
        report(st.error().message);
        return 1;
    }
    // Control plane (issue 5): its own threads; refuses to start on a bad journal_file / http_listen.
    std::unique_ptr<control::ControlPlane> control_plane;
    if (control::ControlPlane::wanted(*cfg)) {
        control_plane = std::make_unique<control::ControlPlane>(io, proxy, cfg);
        if (auto st = control_plane->start(); !st) {
            report(st.error().message);
            return 1;
        }
    }
    // pidfile: written once listening, removed at exit (unless another instance has written its own since).
    std::optional<process::PidFile> pidfile;
    if (!cfg->pidfile.empty()) {
        auto written = process::PidFile::write(cfg->pidfile);
        if (!written) {
            report(written.error().message);
            return 1;
        }
        pidfile = std::move(*written);
    }
    if (daemon) daemon->started();
    spdlog::info("poolguard {} started (config {})", POOLGUARD_VERSION, opt.config_path);
    systemd_notify::ready(serving_status(proxy));

    io.run();
    if (control_plane) control_plane->stop();
    spdlog::info("poolguard stopped");
    spdlog::default_logger()->flush();
    return 0;
}

// `poolguard [flags] FILE.ini` (PgBouncer's command line, for units and scripts that only change the binary
// name) is `poolguard serve [flags] FILE.ini`.
std::vector<std::string> with_serve_shorthand(int argc, char** argv, const CLI::App& app) {
    std::vector<std::string> args(argv + 1, argv + argc);
    if (args.empty()) return args;
    const std::string& first = args.front();
    if (first == "-h" || first == "--help" || first == "--version") return args;
    for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
        if (sub->get_name() == first) return args;
    args.insert(args.begin(), "serve");
    return args;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "poolguard — a PostgreSQL connection pooler that keeps the database from running out of connections"};
    app.set_version_flag("--version", std::string("poolguard ") + POOLGUARD_VERSION);
    app.require_subcommand(1);

    ServeOptions serve_opt;
    auto* serve_cmd = app.add_subcommand(
        "serve",
        "run the pooler with a pgbouncer.ini-compatible configuration (`poolguard [flags] FILE.ini` "
        "is the same)");
    serve_cmd->add_option("config", serve_opt.config_path, "configuration file (pgbouncer.ini format)");
    serve_cmd->add_flag("-v,--verbose", serve_opt.verbose, "more log output (repeat for more)");
    serve_cmd->add_flag("-q,--quiet", serve_opt.quiet, "write nothing to stderr (logfile only)");
    serve_cmd->add_flag("-d,--daemon", serve_opt.daemon, "run in the background (needs pidfile)");
    serve_cmd->add_option("-u,--user", serve_opt.user, "switch to this OS user at startup");
    serve_cmd->add_flag("-V,--version", serve_opt.version, "print the version and exit");
    serve_cmd->add_flag("-R,--reboot", serve_opt.reboot, "accepted for PgBouncer compatibility; ignored");

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

    std::vector<std::string> args = with_serve_shorthand(argc, argv, app);
    std::reverse(args.begin(), args.end());  // CLI11 takes a vector in reverse order
    try {
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
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
    if (serve_cmd->parsed()) return serve(serve_opt);
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
