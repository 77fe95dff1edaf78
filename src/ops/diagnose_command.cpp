// Owns `poolguard diagnose` (once, or repeatedly with --watch) and `poolguard watch` (the live terminal view
// with optional Alertmanager push): the sampling loops around the sans-I/O Diagnosis and Trend.
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>

#include "dbview/any_sampler.h"
#include "dbview/dsn.h"
#include "ops/alert_push.h"
#include "ops/commands.h"
#include "ops/connect_error.h"
#include "ops/diagnosis.h"
#include "ops/trend.h"

namespace poolguard::ops {

namespace {

using Clock = std::chrono::steady_clock;

struct Target {
    dbview::Dsn dsn;
    std::unique_ptr<dbview::AnySampler> sampler;
};

// Parses the DSN and prepares its sampler; prints the 3 AM explanation and returns nullopt on failure.
std::optional<Target> open_target(const std::string& text) {
    auto dsn = dbview::parse_dsn(text);
    if (!dsn) {
        std::fputs(explain_error(dsn.error(), nullptr).c_str(), stderr);
        return std::nullopt;
    }
    auto sampler = dbview::open_sampler(*dsn);
    if (!sampler) {
        std::fputs(explain_error(sampler.error(), &*dsn).c_str(), stderr);
        return std::nullopt;
    }
    return Target{std::move(*dsn), std::move(*sampler)};
}

TrendSample trend_sample(const dbview::Snapshot& snap, Clock::time_point origin) {
    int itx = 0;
    for (const auto& s : snap.sessions)
        if (!s.system && !s.replication &&
            (s.state == dbview::SessionState::idle_in_transaction ||
             s.state == dbview::SessionState::idle_in_transaction_aborted))
            ++itx;
    return TrendSample{std::chrono::duration<double>(Clock::now() - origin).count(), snap.used(),
                       snap.usable(), itx};
}

void sleep_seconds(double s) {
    std::this_thread::sleep_for(std::chrono::duration<double>(s));
}

std::string rfc3339_now() {
    const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

int run_diagnose(const DiagnoseOptions& options) {
    auto target = open_target(options.dsn);
    if (!target) return 2;
    const std::string shown = target->dsn.redacted();
    if (options.watch_s <= 0) {
        auto snap = target->sampler->sample();
        if (!snap) {
            std::fputs(explain_error(snap.error(), &target->dsn).c_str(), stderr);
            return 2;
        }
        const Diagnosis d = diagnose(*snap, shown);
        std::fputs(options.json ? (to_json(d).dump(2) + "\n").c_str() : render_text(d).c_str(), stdout);
        return 0;
    }
    Trend trend;
    const auto origin = Clock::now();
    bool ever_ok = false;
    for (;;) {
        const auto started = Clock::now();
        auto snap = target->sampler->sample();
        if (!snap) {
            std::fputs(explain_error(snap.error(), &target->dsn).c_str(), stderr);
            if (!ever_ok) return 2;  // never reached it: the DSN or credentials are wrong, not a blip
        } else {
            ever_ok = true;
            trend.add(trend_sample(*snap, origin));
            const Diagnosis d = diagnose(*snap, shown);
            const TrendReport report = trend.report();
            if (options.json) {
                std::fputs((to_json(d, report).dump() + "\n").c_str(), stdout);
            } else {
                std::fputs(render_text(d, report).c_str(), stdout);
                std::fputs("----\n", stdout);
            }
            std::fflush(stdout);
        }
        const double spent = std::chrono::duration<double>(Clock::now() - started).count();
        sleep_seconds(std::max(0.0, options.watch_s - spent));
    }
}

int run_watch(const WatchOptions& options) {
    auto target = open_target(options.dsn);
    if (!target) return 2;
    const std::string shown = target->dsn.redacted();
    const bool tty = ::isatty(STDOUT_FILENO) == 1;
    const std::string instance = fmt::format(
        "{}:{}", target->dsn.host.empty() ? "localhost" : target->dsn.host, target->dsn.port_or_default());
    Trend trend;
    const auto origin = Clock::now();
    bool ever_ok = false;
    bool firing = false;
    std::string fired_at;
    std::string alert_status = options.alertmanager_url.empty() ? "off (use --alertmanager URL)" : "armed";
    for (;;) {
        const auto started = Clock::now();
        auto snap = target->sampler->sample();
        std::string screen;
        if (!snap) {
            if (!ever_ok) {
                std::fputs(explain_error(snap.error(), &target->dsn).c_str(), stderr);
                return 2;
            }
            screen = fmt::format("{}  sample failed, retrying every {}s\n{}", rfc3339_now(),
                                 options.interval_s, explain_error(snap.error(), &target->dsn));
        } else {
            ever_ok = true;
            trend.add(trend_sample(*snap, origin));
            const Diagnosis d = diagnose(*snap, shown);
            const TrendReport report = trend.report();
            const double pct = d.utilization * 100;
            if (!options.alertmanager_url.empty()) {
                const bool over = pct >= options.threshold_pct;
                if (over || firing) {
                    if (over && !firing) fired_at = rfc3339_now();
                    PushedAlert alert;
                    alert.labels = {{"alertname", "DatabaseConnectionsExhausted"},
                                    {"severity", pct >= 100 ? "critical" : "warning"},
                                    {"instance", instance},
                                    {"engine", dbview::to_string(d.engine)},
                                    {"source", "poolguard-watch"}};
                    alert.annotations = {
                        {"summary", fmt::format("{:.0f}% of usable connection slots in use ({}/{}) on {}",
                                                pct, d.used, d.usable, instance)},
                        {"description", report.explanation},
                        {"runbook", fmt::format("poolguard diagnose {}", shell_quote(shown))}};
                    alert.starts_at = fired_at;
                    if (!over) alert.ends_at = rfc3339_now();  // resolve
                    auto st = push_alert(options.alertmanager_url, alert);
                    alert_status = !st    ? "push FAILED: " + st.error().message
                                   : over ? fmt::format("FIRING (>= {:.0f}%), pushed at {}",
                                                        options.threshold_pct, rfc3339_now())
                                          : "resolved at " + rfc3339_now();
                    firing = over && st;
                    if (!over) firing = false;
                } else {
                    alert_status = fmt::format("armed (fires at {:.0f}%)", options.threshold_pct);
                }
            }
            screen += fmt::format("poolguard watch  {} {}  {}  every {}s (Ctrl-C to stop)\n",
                                  dbview::to_string(d.engine), d.server_version, shown, options.interval_s);
            screen += fmt::format("{}  verdict {}\n", d.taken_at, to_string(d.verdict));
            screen += fmt::format("Slots    {} {}/{} usable  (max {}, reserved {})\n",
                                  utilization_bar(d.utilization, 40), d.used, d.usable, d.max_connections,
                                  d.reserved_connections);
            std::string states;
            for (const auto& [state, n] : d.by_state)
                states += fmt::format("{}{} {}", states.empty() ? "" : " · ", state, n);
            screen += fmt::format("States   {}\n", states.empty() ? "-" : states);
            screen += fmt::format("Trend    {} (slope {:+.1f}/min over {} samples)\n", report.explanation,
                                  report.slope_per_min, trend.size());
            screen += fmt::format("Forecast {}\n", report.minutes_to_exhaustion
                                                       ? fmt::format("usable slots exhausted in ~{:.0f} min",
                                                                     std::ceil(*report.minutes_to_exhaustion))
                                                       : std::string("no exhaustion in sight"));
            std::string apps;
            for (const auto& [name, n] : d.top_applications)
                apps += fmt::format("{}{} {}", apps.empty() ? "" : " · ", name, n);
            screen += fmt::format("Top apps {}\n", apps.empty() ? "-" : apps);
            screen += fmt::format("Leaks    {} idle in transaction > 1m, {} queries > 2m, {} idle > 5m\n",
                                  d.idle_in_transaction.size(), d.long_running.size(), d.idle.size());
            screen += fmt::format("Alert    {}\n", alert_status);
            screen += fmt::format("Next     {}\n", d.next_command);
        }
        if (tty)
            std::fputs("\033[H\033[2J", stdout);
        else
            screen += "----\n";
        std::fputs(screen.c_str(), stdout);
        std::fflush(stdout);
        const double spent = std::chrono::duration<double>(Clock::now() - started).count();
        sleep_seconds(std::max(0.0, options.interval_s - spent));
    }
}

}  // namespace poolguard::ops
