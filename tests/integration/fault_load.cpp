// Owns FaultLoad: the fault tests' client load (issue 15); see fault_load.h.
#include "fault_load.h"

#include <algorithm>
#include <unordered_set>

namespace itest {

bool FaultLoad::create_table(TempPostgres& pg, const std::string& table) {
    QueryResult r = pg.exec("DROP TABLE IF EXISTS " + table + "; CREATE TABLE " + table +
                            "(id bigint primary key); GRANT ALL ON " + table + " TO PUBLIC");
    if (!r.ok()) std::fprintf(stderr, "create_table(%s): %s\n", table.c_str(), r.describe().c_str());
    return r.ok();
}

void FaultLoad::start() {
    stop_ = false;
    for (int i = 0; i < options_.clients; ++i)
        threads_.emplace_back([this, i] { run_client(i); });
}

void FaultLoad::stop() {
    auto t0 = Clock::now();
    stop_ = true;
    for (auto& t : threads_)
        if (t.joinable()) t.join();
    if (!threads_.empty()) stop_ms_ = elapsed_ms(t0);
    threads_.clear();
}

void FaultLoad::run_client(int index) {
    PgConn conn;
    long long seq = 0;
    const auto timeout = options_.op_timeout;
    while (!stop_) {
        TxnOutcome o;
        o.start = Clock::now();
        o.id = static_cast<long long>(index + 1) * 1'000'000'000LL + ++seq;
        auto step = [&](const char* name, const std::string& sql) {
            QueryResult r = conn.exec(sql, timeout);
            if (r.ok()) return true;
            o.hung = r.timed_out;
            o.error = std::string(name) + ": " + r.sqlstate + " " + r.error;
            return false;
        };
        bool ok = true;
        if (!conn.ok()) {
            conn.close();
            ok = conn.connect(options_.dsn, timeout);
            if (!ok) {
                o.error = "connect: " + conn.connect_error();
                o.hung = conn.connect_ms() >= timeout.count();
            }
        }
        ok = ok && step("BEGIN", "BEGIN") &&
             step("INSERT", "INSERT INTO " + options_.table + " VALUES (" + std::to_string(o.id) + ")") &&
             step("COMMIT", "COMMIT");
        o.committed = ok;
        o.end = Clock::now();
        if (!ok && conn.ok()) {
            // Leave no aborted transaction behind; a connection that cannot even do that is replaced.
            if (!conn.exec("ROLLBACK", 5s).ok()) conn.close();
        }
        {
            std::lock_guard lock(mutex_);
            outcomes_.push_back(std::move(o));
        }
        std::this_thread::sleep_for(ok ? options_.think : std::max(options_.think, 10ms));
    }
}

std::vector<TxnOutcome> FaultLoad::outcomes() const {
    std::lock_guard lock(mutex_);
    return outcomes_;
}

long long FaultLoad::committed() const {
    std::lock_guard lock(mutex_);
    return std::count_if(outcomes_.begin(), outcomes_.end(), [](const auto& o) { return o.committed; });
}

long long FaultLoad::failed() const {
    std::lock_guard lock(mutex_);
    return std::count_if(outcomes_.begin(), outcomes_.end(), [](const auto& o) { return !o.committed; });
}

long long FaultLoad::hung() const {
    std::lock_guard lock(mutex_);
    return std::count_if(outcomes_.begin(), outcomes_.end(), [](const auto& o) { return o.hung; });
}

long long FaultLoad::failed_started_after(Clock::time_point t) const {
    std::lock_guard lock(mutex_);
    return std::count_if(outcomes_.begin(), outcomes_.end(),
                         [t](const auto& o) { return !o.committed && o.start >= t; });
}

std::optional<long long> FaultLoad::first_commit_after(Clock::time_point t) const {
    std::lock_guard lock(mutex_);
    std::optional<Clock::time_point> first;
    for (const auto& o : outcomes_)
        if (o.committed && o.end >= t && (!first || o.end < *first)) first = o.end;
    if (!first) return std::nullopt;
    return std::chrono::duration_cast<std::chrono::milliseconds>(*first - t).count();
}

long long FaultLoad::max_request_ms() const {
    std::lock_guard lock(mutex_);
    long long m = 0;
    for (const auto& o : outcomes_)
        m = std::max<long long>(
            m, std::chrono::duration_cast<std::chrono::milliseconds>(o.end - o.start).count());
    return m;
}

std::vector<long long> FaultLoad::lost_commits(TempPostgres& pg) const {
    QueryResult r = pg.exec("SELECT id FROM " + options_.table, 60s);
    std::vector<long long> lost;
    if (!r.ok()) {
        lost.push_back(-1);  // cannot check: fail visibly
        return lost;
    }
    std::unordered_set<long long> present;
    for (const auto& row : r.rows)
        present.insert(std::stoll(row.at(0)));
    std::lock_guard lock(mutex_);
    for (const auto& o : outcomes_)
        if (o.committed && !present.contains(o.id)) lost.push_back(o.id);
    return lost;
}

std::string FaultLoad::describe_failures(size_t max) const {
    std::lock_guard lock(mutex_);
    std::string out;
    size_t n = 0;
    for (const auto& o : outcomes_) {
        if (o.committed) continue;
        if (n++ == max) {
            out += " ...";
            break;
        }
        out +=
            "\n  [" +
            std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(o.end - o.start).count()) +
            " ms] " + o.error + (o.hung ? " (hung)" : "");
    }
    return out;
}

std::string FaultLoad::summary() const {
    return "committed=" + std::to_string(committed()) + " failed=" + std::to_string(failed()) +
           " hung=" + std::to_string(hung()) + describe_failures();
}

}  // namespace itest
