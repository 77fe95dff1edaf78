// Owns the drill scenarios and their summary (see drill.h).
#include "drill/drill.h"

#include <libpq-fe.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

#include "control/journal.h"

namespace poolguard::drill {

namespace {

using Clock = std::chrono::steady_clock;

struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

// The SQLSTATE of a failed connection attempt: libpq keeps only the message, so map the known ones.
std::string connect_sqlstate(PGconn* c) {
    const std::string msg = c ? PQerrorMessage(c) : "";
    if (msg.find("too many clients") != std::string::npos ||
        msg.find("slots are reserved") != std::string::npos ||
        msg.find("no more connections allowed") != std::string::npos)
        return "53300";
    if (msg.find("password authentication failed") != std::string::npos) return "28P01";
    if (msg.find("query_wait_timeout") != std::string::npos) return "53300";
    return "08006";
}

class Runner {
  public:
    Runner(const Options& o, const std::atomic<bool>* stop)
        : o_(o), stop_(stop), end_(Clock::now() + secs(o.duration_s)) {}

    static Clock::duration secs(double s) {
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
    }
    bool over() const { return Clock::now() >= end_ || (stop_ && stop_->load()); }
    void sleep_until(Clock::time_point t) const {
        while (!over() && Clock::now() < t)
            std::this_thread::sleep_for(
                std::min<Clock::duration>(t - Clock::now(), std::chrono::milliseconds(20)));
    }
    double lead_in_s() const {
        if (o_.lead_in_s >= 0) return std::min(o_.lead_in_s, o_.duration_s);
        return o_.scenario == "spike" ? o_.duration_s / 4 : 0;
    }
    const std::string& scenario_conninfo() const {
        return o_.scenario_conninfo.empty() ? o_.conninfo : o_.scenario_conninfo;
    }

    // Connects without recording; the SQLSTATE when refused ("" = connected).
    std::pair<Conn, std::string> try_connect(const std::string& conninfo, const std::string& app) {
        const std::string ci = conninfo + " application_name='" + app + "' connect_timeout=10";
        Conn c(PQconnectdb(ci.c_str()));
        if (PQstatus(c.get()) != CONNECTION_OK) {
            std::string code = connect_sqlstate(c.get());
            return {nullptr, std::move(code)};
        }
        return {std::move(c), ""};
    }

    // Runs one statement without recording; its SQLSTATE when it failed ("" = it succeeded).
    static std::string try_exec(PGconn* c, const char* sql) {
        PGresult* r = PQexec(c, sql);
        const auto st = PQresultStatus(r);
        std::string code;
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            const char* field = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            code = field ? field : "08006";
        }
        PQclear(r);
        return code;
    }

    Conn connect(const std::string& role, const std::string& app, const std::string& conninfo) {
        const double start = rec_.now_s();
        auto [c, code] = try_connect(conninfo, app);
        rec_.record(role, Request{start, (rec_.now_s() - start) * 1000, code.empty(), code});
        return std::move(c);
    }
    Conn connect(const std::string& role, const std::string& app) { return connect(role, app, o_.conninfo); }

    // Runs one statement; false (and recorded) on error.
    bool exec(PGconn* c, const std::string& role, const char* sql) {
        const double start = rec_.now_s();
        const std::string code = try_exec(c, sql);
        rec_.record(role, Request{start, (rec_.now_s() - start) * 1000, code.empty(), code});
        return code.empty();
    }

    // One web request on its own connection: connect, one query, close; recorded as one request.
    void web_request(const std::string& app) {
        const double start = rec_.now_s();
        auto [c, code] = try_connect(o_.conninfo, app);
        if (code.empty()) code = try_exec(c.get(), "select 1");
        rec_.record("web", Request{start, (rec_.now_s() - start) * 1000, code.empty(), code});
    }

    void web(int index, int connections) {
        const std::string app = fmt::format("web-{}", index);
        Conn c;
        const double per_conn = std::max(o_.rate / connections, 0.1);
        auto next = Clock::now();
        while (!over()) {
            if (o_.web_reconnect) {
                web_request(app);
            } else {
                if (!c && !(c = connect("web", app))) {  // refused: try again shortly
                    sleep_until(Clock::now() + std::chrono::milliseconds(200));
                    continue;
                }
                if (!exec(c.get(), "web", "select 1") && PQstatus(c.get()) != CONNECTION_OK) c.reset();
            }
            next += secs(1.0 / per_conn);
            sleep_until(next);
        }
    }

    // Gradual exhaustion: after the lead-in, n connections opened evenly over the rest of the run, each
    // kept (idle after its first query) until the end.
    void gradual(int n) {
        std::vector<Conn> held;
        const auto start = Clock::now() + secs(lead_in_s());
        const double ramp = o_.duration_s - lead_in_s();
        for (int i = 0; i < n && !over(); ++i) {
            sleep_until(start + secs(ramp * i / n));
            if (over()) break;
            if (auto c = connect("gradual", "reporting", scenario_conninfo())) {
                exec(c.get(), "gradual", "select 1");
                held.push_back(std::move(c));
            }
        }
        sleep_until(end_);
    }

    // Sudden spike: after the lead-in, 5 batch jobs open `each` connections at once and keep them busy; a
    // worker that is refused (or loses its connection) retries 200 ms later, as job frameworks do.
    void spike_job(int job, int each) {
        sleep_until(Clock::now() + secs(lead_in_s()));
        std::vector<std::thread> workers;
        for (int i = 0; i < each && !over(); ++i)
            workers.emplace_back([this, job] {
                const std::string app = fmt::format("batch-job-{}", job);
                Conn c;
                while (!over()) {
                    if (!c && !(c = connect("batch", app, scenario_conninfo()))) {
                        sleep_until(Clock::now() + std::chrono::milliseconds(200));
                        continue;
                    }
                    if (!exec(c.get(), "batch", "select pg_sleep(0.2)") && PQstatus(c.get()) != CONNECTION_OK)
                        c.reset();
                }
            });
        for (auto& w : workers)
            w.join();
    }

    // Connection leak: after the lead-in, a worker doing short transactions that forgets every third one
    // (the transaction stays open and its connection is lost to the worker), up to max_leaks.
    void leaky_worker(int max_leaks) {
        sleep_until(Clock::now() + secs(lead_in_s()));
        std::vector<Conn> leaked;
        Conn c;
        if (!over()) c = connect("leaky-worker", "leaky-worker", scenario_conninfo());
        int n = 0;
        while (c && !over()) {
            const bool leak = ++n % 3 == 0 && static_cast<int>(leaked.size()) < max_leaks;
            if (!exec(c.get(), "leaky-worker", "begin") || !exec(c.get(), "leaky-worker", "select now()"))
                break;
            if (leak) {
                leaked.push_back(std::move(c));
                c = connect("leaky-worker", "leaky-worker", scenario_conninfo());
            } else {
                exec(c.get(), "leaky-worker", "commit");
            }
            sleep_until(Clock::now() +
                        std::chrono::milliseconds(static_cast<int>(500 / std::max(o_.scale, 0.1))));
        }
        sleep_until(end_);
    }

    Report run() {
        std::vector<std::thread> threads;
        const auto scaled = [&](double n) {
            return std::max(1, static_cast<int>(std::lround(n * o_.scale)));
        };
        if (o_.web || o_.scenario == "web") {
            const int n = scaled(3);
            for (int i = 0; i < n; ++i)
                threads.emplace_back([this, i, n] { web(i + 1, n); });
        }
        if (o_.scenario == "gradual") threads.emplace_back([&] { gradual(scaled(20)); });
        if (o_.scenario == "spike")
            for (int job = 1; job <= 5; ++job)
                threads.emplace_back([this, job, each = scaled(4)] { spike_job(job, each); });
        if (o_.scenario == "leak") threads.emplace_back([&] { leaky_worker(scaled(10)); });
        for (auto& t : threads)
            t.join();
        Report report;
        report.options = o_;
        report.started_at = rec_.started_at();
        report.incident_start_s = o_.scenario == "web" ? 0 : lead_in_s();
        report.roles = rec_.roles();
        return report;
    }

  private:
    const Options& o_;
    const std::atomic<bool>* stop_;
    Clock::time_point end_;
    Recorder rec_;
};

}  // namespace

Recorder::Recorder() : start_(Clock::now()), wall_start_(std::chrono::system_clock::now()) {}

double Recorder::now_s() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
}

void Recorder::ok(const std::string& role, double latency_ms) {
    record(role, Request{now_s() - latency_ms / 1000, latency_ms, true, ""});
}

void Recorder::failed(const std::string& role, const std::string& sqlstate, double latency_ms) {
    record(role, Request{now_s() - latency_ms / 1000, latency_ms, false, sqlstate});
}

void Recorder::record(const std::string& role, const Request& request) {
    std::lock_guard lock(mutex_);
    auto& r = roles_[role];
    if (request.ok) {
        ++r.ok;
        r.latency_ms.push_back(request.latency_ms);
    } else {
        ++r.failed[request.sqlstate];
    }
    r.requests.push_back(request);
}

std::map<std::string, RoleStats> Recorder::roles() const {
    std::lock_guard lock(mutex_);
    return roles_;
}

double percentile(std::vector<double> values, double p) {
    if (values.empty()) return 0;
    std::sort(values.begin(), values.end());
    const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
    const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
    return values[i];
}

std::string format_summary(const std::map<std::string, RoleStats>& roles) {
    std::string out;
    for (const auto& [role, r] : roles) {
        uint64_t failed = 0;
        std::string by;
        for (const auto& [code, n] : r.failed) {
            failed += n;
            by += fmt::format("{}{} x{}", by.empty() ? "" : ", ", code.empty() ? "?" : code, n);
        }
        out +=
            fmt::format("{}: {} ok, {} failed{}, latency p50 {:.1f} ms p95 {:.1f} ms p99 {:.1f} ms\n", role,
                        r.ok, failed, by.empty() ? "" : " (" + by + ")", percentile(r.latency_ms, 50),
                        percentile(r.latency_ms, 95), percentile(r.latency_ms, 99));
    }
    return out;
}

std::vector<Bucket> timeline(const RoleStats& role, double duration_s, double bucket_s) {
    bucket_s = bucket_s > 0 ? bucket_s : 1;
    const size_t n = std::max<size_t>(1, static_cast<size_t>(std::ceil(duration_s / bucket_s - 1e-9)));
    std::vector<Bucket> out(n);
    std::vector<std::vector<double>> latencies(n);
    for (size_t i = 0; i < n; ++i)
        out[i].start_s = static_cast<double>(i) * bucket_s;
    for (const auto& r : role.requests) {
        const double slot = std::floor(std::max(r.start_s, 0.0) / bucket_s);
        const size_t i = std::min(n - 1, static_cast<size_t>(slot));
        if (r.ok) {
            ++out[i].ok;
            latencies[i].push_back(r.latency_ms);
        } else {
            ++out[i].failed;
        }
    }
    for (size_t i = 0; i < n; ++i)
        out[i].p99_ms = percentile(std::move(latencies[i]), 99);
    return out;
}

std::optional<double> Recovery::time_to_recover_s() const {
    if (!first_breach_s || !recovered_s) return std::nullopt;
    return *recovered_s - *first_breach_s;
}

Recovery recovery(const std::vector<Bucket>& buckets, double slo_ms, double min_stable_s) {
    Recovery r;
    if (buckets.empty()) return r;
    const double width = buckets.size() > 1 ? buckets[1].start_s - buckets[0].start_s : 1;
    const auto breached = [&](const Bucket& b) { return b.failed > 0 || b.p99_ms > slo_ms; };
    std::optional<size_t> first_breach;
    for (size_t i = 0; i < buckets.size(); ++i) {
        if (!breached(buckets[i])) continue;
        if (!first_breach) {
            first_breach = i;
            r.first_breach_s = buckets[i].start_s;
        }
        r.breach_s += width;
    }
    if (!first_breach) return r;
    const size_t stable = std::max<size_t>(1, static_cast<size_t>(std::ceil(min_stable_s / width - 1e-9)));
    for (size_t i = *first_breach + 1; i < buckets.size(); ++i) {
        if (breached(buckets[i]) || buckets[i].ok == 0) continue;  // recovery starts with evidence
        if (i + stable > buckets.size()) break;                    // too little of the run left to tell
        bool calm = true;
        for (size_t j = i; j < i + stable; ++j)
            calm = calm && !breached(buckets[j]);
        if (calm) {
            r.recovered_s = buckets[i].start_s;
            break;
        }
    }
    return r;
}

nlohmann::json to_json(const Report& report) {
    using nlohmann::json;
    const auto number_or_null = [](std::optional<double> v) { return v ? json(*v) : json(nullptr); };
    json roles = json::object();
    for (const auto& [name, r] : report.roles) {
        json j;
        j["ok"] = r.ok;
        uint64_t failed = 0;
        json by = json::object();
        for (const auto& [code, n] : r.failed) {
            failed += n;
            by[code.empty() ? "?" : code] = n;
        }
        j["failed"] = failed;
        j["failed_by"] = by;
        j["p50_ms"] = percentile(r.latency_ms, 50);
        j["p95_ms"] = percentile(r.latency_ms, 95);
        j["p99_ms"] = percentile(r.latency_ms, 99);
        j["max_ms"] = percentile(r.latency_ms, 100);
        const auto buckets = timeline(r, report.options.duration_s);
        json tl = json::array();
        for (const auto& b : buckets)
            tl.push_back({{"t", b.start_s}, {"ok", b.ok}, {"failed", b.failed}, {"p99_ms", b.p99_ms}});
        j["timeline"] = tl;
        const Recovery rec = recovery(buckets, report.options.slo_ms);
        j["first_breach_s"] = number_or_null(rec.first_breach_s);
        j["recovered_s"] = number_or_null(rec.recovered_s);
        j["time_to_recover_s"] = number_or_null(rec.time_to_recover_s());
        j["breach_s"] = rec.breach_s;
        roles[name] = j;
    }
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(report.started_at.time_since_epoch()).count();
    return {{"scenario", report.options.scenario},
            {"started_at", control::format_time(report.started_at)},
            {"started_at_unix", static_cast<double>(ms) / 1000},
            {"duration_s", report.options.duration_s},
            {"incident_start_s", report.incident_start_s},
            {"slo_ms", report.options.slo_ms},
            {"rate", report.options.rate},
            {"scale", report.options.scale},
            {"web_reconnect", report.options.web_reconnect},
            {"roles", roles}};
}

std::map<std::string, RoleStats> run(const Options& options, const std::atomic<bool>* stop) {
    return run_report(options, stop).roles;
}

Report run_report(const Options& options, const std::atomic<bool>* stop) {
    return Runner(options, stop).run();
}

}  // namespace poolguard::drill
