// Owns the incident workload of `poolguard drill --scenario incident` and its table (see incident.h).
#include "drill/incident.h"

#include <libpq-fe.h>
#include <poll.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

namespace poolguard::drill {

namespace {

using Clock = std::chrono::steady_clock;

Clock::duration secs(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
}
double ms_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

struct ConnDeleter {
    void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;

// A short, stable failure reason from a server or pooler message: the SQLSTATE plus a tag for the messages
// this incident is about (so the table says *why*, not only 53300).
std::string tag_of(const std::string& msg) {
    static const std::pair<const char*, const char*> kTags[] = {
        {"too many clients", "too many clients"},
        {"slots are reserved", "reserved slots"},
        {"no more connections allowed", "max_client_conn"},
        {"query_wait_timeout", "query_wait_timeout"},
        {"circuit breaker", "circuit breaker"},
        {"idle in transaction", "idle in transaction"},
        {"idle transaction timeout", "idle_transaction_timeout"},
        {"statement timeout", "statement timeout"},
        {"canceling statement", "cancelled"},
        {"terminat", "terminated"},
        {"server closed the connection", "connection closed"},
        {"Connection refused", "connection refused"},
        {"pool_size", "pool full"},
    };
    for (const auto& [needle, tag] : kTags)
        if (msg.find(needle) != std::string::npos) return tag;
    std::string first = msg.substr(0, msg.find('\n'));
    if (first.size() > 40) first = first.substr(0, 40);
    return first;
}

// The reason of a failed login: libpq keeps only the message, so the SQLSTATE is inferred for the known ones.
std::string connect_reason(PGconn* c) {
    const std::string msg = c ? PQerrorMessage(c) : "out of memory";
    const std::string tag = tag_of(msg);
    const bool full = tag == "too many clients" || tag == "reserved slots" || tag == "max_client_conn";
    return fmt::format("connect {}{}", full ? "53300 " : "", tag);
}

// Waits until `fd` is ready for `events` or `deadline`: > 0 ready (or an error libpq will report), 0 timeout.
int wait_socket(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left = deadline - Clock::now();
        if (left <= Clock::duration::zero()) return 0;
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        pollfd p{fd, events, 0};
        const int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(ms, 1000)));
        if (r > 0) return r;
        if (r < 0 && errno != EINTR) return 1;
    }
}

// A login that gives up at `deadline` ("timeout").
Conn connect_until(const std::string& conninfo, Clock::time_point deadline, std::string* reason) {
    Conn c(PQconnectStart(conninfo.c_str()));
    if (!c || PQstatus(c.get()) == CONNECTION_BAD) {
        *reason = connect_reason(c.get());
        return nullptr;
    }
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    for (;;) {
        if (st == PGRES_POLLING_OK) return c;
        if (st == PGRES_POLLING_FAILED) {
            *reason = connect_reason(c.get());
            return nullptr;
        }
        if (wait_socket(PQsocket(c.get()), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline) == 0) {
            *reason = "timeout";
            return nullptr;
        }
        st = PQconnectPoll(c.get());
    }
}

struct ExecResult {
    bool ok = false;
    bool timed_out = false;
    std::string reason;  // on failure
};

// Runs `sql` (simple protocol), reading every result, until `deadline`. After a timeout the connection is
// in an unknown state: the caller drops it (as an application closes a connection whose query timed out).
ExecResult exec_until(PGconn* c, const std::string& sql, Clock::time_point deadline) {
    ExecResult out;
    if (!PQsendQuery(c, sql.c_str())) {
        out.reason = "08006 " + tag_of(PQerrorMessage(c));
        return out;
    }
    int f;
    while ((f = PQflush(c)) == 1)
        if (wait_socket(PQsocket(c), POLLIN | POLLOUT, deadline) == 0 || !PQconsumeInput(c)) break;
    if (f == 1) {
        out.timed_out = true;
        out.reason = "timeout";
        return out;
    }
    bool good = true;
    for (;;) {
        while (PQisBusy(c)) {
            if (wait_socket(PQsocket(c), POLLIN, deadline) == 0) {
                out.timed_out = true;
                out.reason = "timeout";
                return out;
            }
            if (!PQconsumeInput(c)) break;  // connection lost: PQgetResult reports it
        }
        PGresult* r = PQgetResult(c);
        if (!r) break;
        const auto st = PQresultStatus(r);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && good) {
            good = false;
            const char* code = PQresultErrorField(r, PG_DIAG_SQLSTATE);
            const char* msg = PQresultErrorMessage(r);
            out.reason = fmt::format("{} {}", code ? code : "08006", tag_of(msg ? msg : ""));
        }
        PQclear(r);
        if (PQstatus(c) == CONNECTION_BAD && PQisBusy(c)) break;
    }
    out.ok = good;
    return out;
}

// One web service: an open-loop request schedule (arrivals every 1/rate s from `start` to `stop`, queued in
// the application), `pool` workers sharing an app-side pool of at most `pool` connections (LIFO reuse, so
// it holds about the peak concurrency), each request failing when not done `timeout` after its arrival.
struct WebService {
    std::string name;
    double rate = 200;
    Clock::time_point start, stop;

    std::mutex mutex;
    std::condition_variable ready;
    std::deque<Clock::time_point> queue;  // arrival times
    bool closed = false;
    std::vector<std::pair<Conn, Clock::time_point>> idle;  // LIFO: the most recently used at the back
};

class Incident {
  public:
    Incident(const IncidentOptions& o, const std::atomic<bool>* stop)
        : o_(o), stop_(stop), start_(Clock::now()), end_(start_ + secs(o.duration_s)) {}

    std::vector<IncidentRow> run();

  private:
    bool stopped() const { return stop_ && stop_->load(); }
    bool over() const { return Clock::now() >= end_ || stopped(); }
    void sleep_until(Clock::time_point t) const {
        while (!stopped() && Clock::now() < t)
            std::this_thread::sleep_for(
                std::min<Clock::duration>(t - Clock::now(), std::chrono::milliseconds(50)));
    }
    std::string conninfo(const std::string& app) const {
        return o_.conninfo + " application_name='" + app + "'";
    }

    void web_dispatch(WebService& s);
    void web_worker(WebService& s);
    void put_back(WebService& s, Conn c);
    void batch_connection(int job);
    void mobile_worker();
    void leak_once();
    void bulk_report();

    const IncidentOptions& o_;
    const std::atomic<bool>* stop_;
    const Clock::time_point start_, end_;
    Recorder rec_;
    std::mutex leaks_mutex_;
    std::vector<Conn> leaks_;
    std::vector<std::thread> leak_threads_;
    std::atomic<uint64_t> batch_cut_{0};
};

void Incident::web_dispatch(WebService& s) {
    const auto interval = secs(1.0 / std::max(s.rate, 0.1));
    sleep_until(s.start);
    for (auto next = s.start; next < s.stop && !stopped(); next += interval) {
        std::this_thread::sleep_until(next);
        {
            std::lock_guard lock(s.mutex);
            s.queue.push_back(next);
        }
        s.ready.notify_one();
    }
    {
        std::lock_guard lock(s.mutex);
        s.closed = true;
    }
    s.ready.notify_all();
}

void Incident::web_worker(WebService& s) {
    const double timeout_ms = o_.timeout_s * 1000;
    for (;;) {
        Clock::time_point arrival;
        Conn c;
        {
            std::unique_lock lock(s.mutex);
            s.ready.wait(lock, [&] { return s.closed || !s.queue.empty(); });
            if (s.queue.empty()) return;
            arrival = s.queue.front();
            s.queue.pop_front();
            if (!s.idle.empty()) {
                c = std::move(s.idle.back().first);
                s.idle.pop_back();
            }
        }
        const auto deadline = arrival + secs(o_.timeout_s);
        const auto fail = [&](const std::string& reason) {
            rec_.failed(s.name, reason);
            rec_.failed("web (all)", reason);
        };
        if (Clock::now() >= deadline) {  // waited in the application for a connection all along
            fail("timeout in app pool");
            if (c) put_back(s, std::move(c));
            continue;
        }
        if (!c) {
            std::string reason;
            c = connect_until(conninfo(s.name), deadline, &reason);
            if (!c) {
                fail(reason);
                continue;
            }
        }
        const auto r = exec_until(c.get(), o_.web_query, deadline);
        if (r.ok) {
            const double ms = ms_between(arrival, Clock::now());
            rec_.ok(s.name, std::min(ms, timeout_ms));
            rec_.ok("web (all)", std::min(ms, timeout_ms));
        } else {
            fail(r.reason);
        }
        if (!r.timed_out && PQstatus(c.get()) == CONNECTION_OK) put_back(s, std::move(c));
    }
}

// Returns a connection to the app-side pool and closes the ones idle longer than web_idle_timeout_s (the
// oldest are at the front), as application pools do (HikariCP's idleTimeout).
void Incident::put_back(WebService& s, Conn c) {
    const auto now = Clock::now();
    std::vector<Conn> retired;
    {
        std::lock_guard lock(s.mutex);
        s.idle.emplace_back(std::move(c), now);
        const auto limit = now - secs(o_.web_idle_timeout_s);
        auto it = s.idle.begin();
        while (it != s.idle.end() && it->second < limit)
            retired.push_back(std::move((it++)->first));
        s.idle.erase(s.idle.begin(), it);
    }
}

// One connection of a batch job: BEGIN; pg_sleep(1..3 s); COMMIT in a loop, reconnecting after a second
// when refused. A transaction not done 3 s (the longest one) after the incident ends is cut, not counted.
void Incident::batch_connection(int job) {
    const std::string app = fmt::format("batch-{}", job);
    std::mt19937 rng(std::random_device{}());
    std::uniform_real_distribution<double> seconds(1.0, 3.0);
    sleep_until(start_ + secs(o_.batch_start_s));
    Conn c;
    while (!over()) {
        const auto cutoff = end_ + secs(3);
        if (!c) {
            std::string reason;
            c = connect_until(conninfo(app), std::min(Clock::now() + secs(10), cutoff), &reason);
            if (!c) {
                if (!over()) rec_.failed("batch", reason);
                sleep_until(Clock::now() + secs(1));
                continue;
            }
        }
        const auto t0 = Clock::now();
        const auto deadline = std::min(t0 + secs(30), cutoff);
        const std::string sleep_sql = fmt::format("select pg_sleep({:.3f})", seconds(rng));
        ExecResult r = exec_until(c.get(), "begin", deadline);
        if (r.ok) r = exec_until(c.get(), sleep_sql, deadline);
        if (r.ok) r = exec_until(c.get(), "commit", deadline);
        if (r.ok) {
            rec_.ok("batch", ms_between(t0, Clock::now()));
        } else if (r.timed_out && Clock::now() >= end_) {
            ++batch_cut_;
        } else {
            rec_.failed("batch", r.reason);
        }
        if (!r.ok) {
            if (!r.timed_out && PQstatus(c.get()) == CONNECTION_OK)
                exec_until(c.get(), "rollback", std::min(Clock::now() + secs(5), cutoff));
            else
                c.reset();
            if (!r.timed_out) sleep_until(Clock::now() + secs(1));
        }
    }
}

// One leak: log in, BEGIN, a query, then keep the connection with its transaction open until the end.
void Incident::leak_once() {
    const auto t0 = Clock::now();
    const auto deadline = t0 + secs(o_.timeout_s);
    std::string reason;
    Conn c = connect_until(conninfo("mobile-worker"), deadline, &reason);
    if (!c) {
        rec_.failed("mobile-worker", reason);
        return;
    }
    auto r = exec_until(c.get(), "begin", deadline);
    if (r.ok) r = exec_until(c.get(), "select now()", deadline);
    if (!r.ok) {
        rec_.failed("mobile-worker", r.reason);
        return;
    }
    rec_.ok("mobile-worker", ms_between(t0, Clock::now()));
    std::lock_guard lock(leaks_mutex_);
    leaks_.push_back(std::move(c));
}

void Incident::mobile_worker() {
    for (auto next = start_; next < end_ && !stopped(); next += secs(o_.leak_every_s)) {
        sleep_until(next);
        std::lock_guard lock(leaks_mutex_);
        leak_threads_.emplace_back([this] { leak_once(); });
    }
}

void Incident::bulk_report() {
    const double at = o_.bulk_at >= 0 ? o_.bulk_at : o_.duration_s / 4;
    sleep_until(start_ + secs(at));
    if (stopped()) return;
    const auto t0 = Clock::now();
    const auto deadline = std::max(end_, t0 + secs(o_.bulk_seconds)) + secs(o_.timeout_s);
    std::string reason;
    Conn c = connect_until(conninfo("bulk-report"), std::min(t0 + secs(o_.timeout_s), deadline), &reason);
    if (!c) {
        rec_.failed("bulk-report", reason);
        return;
    }
    const auto r = exec_until(c.get(), fmt::format("select pg_sleep({})", o_.bulk_seconds), deadline);
    if (r.ok)
        rec_.ok("bulk-report", ms_between(t0, Clock::now()));
    else
        rec_.failed("bulk-report", r.reason);
}

std::vector<IncidentRow> Incident::run() {
    const char* names[] = {"web-a", "web-b", "web-c", "web-d"};
    std::vector<std::unique_ptr<WebService>> services;
    const double web_d_at = o_.web_d_at >= 0 ? o_.web_d_at : o_.duration_s / 2;
    for (int i = 0; i < 4; ++i) {
        auto s = std::make_unique<WebService>();
        s->name = names[i];
        s->rate = o_.web_rate / 3;
        s->start = i < 3 ? start_ : start_ + secs(web_d_at);
        s->stop = end_;
        services.push_back(std::move(s));
    }
    std::vector<std::thread> threads;
    for (auto& s : services) {
        threads.emplace_back([this, p = s.get()] { web_dispatch(*p); });
        for (int w = 0; w < o_.web_pool; ++w)
            threads.emplace_back([this, p = s.get()] { web_worker(*p); });
    }
    for (int job = 1; job <= o_.batch_jobs; ++job)
        for (int i = 0; i < o_.batch_connections; ++i)
            threads.emplace_back([this, job] { batch_connection(job); });
    threads.emplace_back([this] { mobile_worker(); });
    for (int i = 0; i < o_.bulk_queries; ++i)
        threads.emplace_back([this] { bulk_report(); });
    for (auto& t : threads)
        t.join();
    {
        std::vector<std::thread> leak_threads;
        {
            std::lock_guard lock(leaks_mutex_);
            leak_threads.swap(leak_threads_);
        }
        for (auto& t : leak_threads)
            t.join();
    }

    // Which leaked transactions the target ended: a still-open one answers a query inside its transaction.
    uint64_t ended = 0, open = 0;
    std::map<std::string, uint64_t> ended_by;
    for (auto& c : leaks_) {
        const auto r = exec_until(c.get(), "select 1", Clock::now() + secs(2));
        if (r.ok) {
            ++open;
        } else {
            ++ended;
            ++ended_by[r.reason];
        }
    }
    leaks_.clear();

    const auto roles = rec_.roles();
    const auto stats = [&](const std::string& role) {
        const auto it = roles.find(role);
        return it == roles.end() ? RoleStats{} : it->second;
    };
    std::vector<IncidentRow> rows;
    for (const char* name : names)
        rows.push_back(summarize_role(name, stats(name), o_.timeout_s * 1000));
    rows.back().note = fmt::format("starts at {:.0f} s", web_d_at);
    rows.push_back(summarize_role("web (all)", stats("web (all)"), o_.timeout_s * 1000,
                                  fmt::format("{:.0f} req/s, then {:.0f} from {:.0f} s; timeout {:.0f} s",
                                              o_.web_rate, o_.web_rate * 4 / 3, web_d_at, o_.timeout_s)));
    const auto batch = stats("batch");
    const double batch_seconds = std::max(o_.duration_s - o_.batch_start_s, 1.0);
    rows.push_back(
        summarize_role("batch", batch, 0,
                       fmt::format("{:.1f} tx/s committed{}", static_cast<double>(batch.ok) / batch_seconds,
                                   batch_cut_ ? fmt::format(", {} cut by the end", batch_cut_.load()) : "")));
    std::string ended_note;
    for (const auto& [reason, n] : ended_by)
        ended_note += fmt::format("{}{} x{}", ended_note.empty() ? "" : ", ", reason, n);
    rows.push_back(summarize_role("mobile-worker", stats("mobile-worker"), 0,
                                  fmt::format("leaks ended by the target {} ({}), still open at the end {}",
                                              ended, ended_note.empty() ? "-" : ended_note, open)));
    rows.push_back(summarize_role("bulk-report", stats("bulk-report"), 0));
    return rows;
}

}  // namespace

IncidentRow summarize_role(const std::string& role, const RoleStats& stats, double failed_as_ms,
                           std::string note) {
    IncidentRow row;
    row.role = role;
    row.ok = stats.ok;
    std::vector<std::pair<uint64_t, std::string>> by;
    for (const auto& [reason, n] : stats.failed) {
        row.failed += n;
        by.emplace_back(n, reason.empty() ? "?" : reason);
    }
    std::sort(by.begin(), by.end(), [](const auto& a, const auto& b) {
        return a.first != b.first ? a.first > b.first : a.second < b.second;
    });
    for (size_t i = 0; i < by.size() && i < 3; ++i)
        row.reasons += fmt::format("{}{} x{}", i ? ", " : "", by[i].second, by[i].first);
    if (by.size() > 3) row.reasons += ", ...";
    const uint64_t total = row.ok + row.failed;
    row.success_pct = total ? 100.0 * static_cast<double>(row.ok) / static_cast<double>(total) : 100.0;
    std::vector<double> latency = stats.latency_ms;
    if (failed_as_ms > 0) latency.insert(latency.end(), row.failed, failed_as_ms);
    row.p50_ms = percentile(latency, 50);
    row.p99_ms = percentile(latency, 99);
    row.note = std::move(note);
    return row;
}

std::string format_incident_table(const std::string& label, const std::vector<IncidentRow>& rows,
                                  bool header) {
    std::string out;
    if (header)
        out +=
            "| target | role | ok | failed | top failure reasons | success % | p50 ms | p99 ms | notes |\n"
            "|---|---|---:|---:|---|---:|---:|---:|---|\n";
    for (const auto& r : rows)
        out += fmt::format("| {} | {} | {} | {} | {} | {:.2f} | {:.1f} | {:.1f} | {} |\n", label, r.role,
                           r.ok, r.failed, r.reasons.empty() ? "-" : r.reasons, r.success_pct, r.p50_ms,
                           r.p99_ms, r.note.empty() ? "" : r.note);
    return out;
}

std::vector<IncidentRow> run_incident(const IncidentOptions& options, const std::atomic<bool>* stop) {
    return Incident(options, stop).run();
}

}  // namespace poolguard::drill
