// Owns the drill scenarios and their summary (see drill.h).
#include "drill/drill.h"

#include <libpq-fe.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <thread>

namespace poolguard::drill {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

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

    Conn connect(const std::string& role, const std::string& app) {
        const auto t = Clock::now();
        const std::string ci = o_.conninfo + " application_name='" + app + "' connect_timeout=10";
        Conn c(PQconnectdb(ci.c_str()));
        if (PQstatus(c.get()) != CONNECTION_OK) {
            rec_.failed(role, connect_sqlstate(c.get()));
            return nullptr;
        }
        rec_.ok(role, ms_since(t));
        return c;
    }

    // Runs one statement; false (and recorded) on error.
    bool exec(PGconn* c, const std::string& role, const char* sql) {
        const auto t = Clock::now();
        PGresult* r = PQexec(c, sql);
        const auto st = PQresultStatus(r);
        const bool good = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (good) {
            rec_.ok(role, ms_since(t));
        } else {
            const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            rec_.failed(role, code ? code : "08006");
        }
        PQclear(r);
        return good;
    }

    void web(int index, int connections) {
        const std::string app = fmt::format("web-{}", index);
        Conn c;
        const double per_conn = std::max(o_.rate / connections, 0.1);
        auto next = Clock::now();
        while (!over()) {
            if (!c && !(c = connect("web", app))) {  // refused: try again shortly
                sleep_until(Clock::now() + std::chrono::milliseconds(200));
                continue;
            }
            if (!exec(c.get(), "web", "select 1") && PQstatus(c.get()) != CONNECTION_OK) c.reset();
            next += secs(1.0 / per_conn);
            sleep_until(next);
        }
    }

    // Gradual exhaustion: n connections opened evenly over the duration, each kept (and used now and then).
    void gradual(int n) {
        std::vector<Conn> held;
        const auto start = Clock::now();
        for (int i = 0; i < n && !over(); ++i) {
            sleep_until(start + secs(o_.duration_s * i / n));
            if (auto c = connect("gradual", "reporting")) {
                exec(c.get(), "gradual", "select 1");
                held.push_back(std::move(c));
            }
        }
        sleep_until(end_);
    }

    // Sudden spike: a quarter in, 5 batch jobs open `each` connections at once and keep them busy.
    void spike_job(int job, int each) {
        sleep_until(Clock::now() + secs(o_.duration_s / 4));
        std::vector<std::thread> workers;
        for (int i = 0; i < each; ++i)
            workers.emplace_back([this, job] {
                auto c = connect("batch", fmt::format("batch-job-{}", job));
                while (c && !over())
                    if (!exec(c.get(), "batch", "select pg_sleep(0.2)")) break;
            });
        for (auto& w : workers)
            w.join();
    }

    // Connection leak: a worker doing short transactions that forgets every third one (the transaction
    // stays open and its connection is lost to the worker), up to max_leaks.
    void leaky_worker(int max_leaks) {
        std::vector<Conn> leaked;
        Conn c = connect("leaky-worker", "leaky-worker");
        int n = 0;
        while (c && !over()) {
            const bool leak = ++n % 3 == 0 && static_cast<int>(leaked.size()) < max_leaks;
            if (!exec(c.get(), "leaky-worker", "begin") || !exec(c.get(), "leaky-worker", "select now()"))
                break;
            if (leak) {
                leaked.push_back(std::move(c));
                c = connect("leaky-worker", "leaky-worker");
            } else {
                exec(c.get(), "leaky-worker", "commit");
            }
            sleep_until(Clock::now() +
                        std::chrono::milliseconds(static_cast<int>(500 / std::max(o_.scale, 0.1))));
        }
        sleep_until(end_);
    }

    std::map<std::string, RoleStats> run() {
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
        return rec_.roles();
    }

  private:
    const Options& o_;
    const std::atomic<bool>* stop_;
    Clock::time_point end_;
    Recorder rec_;
};

}  // namespace

void Recorder::ok(const std::string& role, double latency_ms) {
    std::lock_guard lock(mutex_);
    auto& r = roles_[role];
    ++r.ok;
    r.latency_ms.push_back(latency_ms);
}

void Recorder::failed(const std::string& role, const std::string& sqlstate) {
    std::lock_guard lock(mutex_);
    ++roles_[role].failed[sqlstate];
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

std::map<std::string, RoleStats> run(const Options& options, const std::atomic<bool>* stop) {
    return Runner(options, stop).run();
}

}  // namespace poolguard::drill
