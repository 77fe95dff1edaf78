// Owns the poolguard command line: `poolguard serve CONFIG.ini`, the ops commands (src/ops), --version,
// --help.
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <CLI/CLI.hpp>
#include <asio.hpp>
#include <csignal>
#include <cstdio>

#include "common/logging.h"
#include "config/config.h"
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
    spdlog::info("poolguard {} started (config {})", POOLGUARD_VERSION, config_path);

    io.run();
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

    auto run_ops_command = poolguard::ops::register_ops_commands(app);  // diagnose, recover, watch, logscan

    CLI11_PARSE(app, argc, argv);
    if (serve_cmd->parsed()) return serve(config_path, verbose);
    if (auto exit_code = run_ops_command()) return *exit_code;
    return 0;
}
