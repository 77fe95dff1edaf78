// Owns the shared test fixture (one TempPostgres per suite), the per-test watchdog and concurrency helpers.
#include "fixtures.h"

#include <httplib.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>

namespace itest {

std::unique_ptr<TempPostgres> PoolerTest::server_;

void PoolerTest::start_server(TempPostgresOptions options) {
    server_ = std::make_unique<TempPostgres>(std::move(options));
    if (!server_->ok()) return;  // SetUp reports it
    server_->create_role(kApp, kAppPass);
    server_->create_role(kApp2, kApp2Pass);
}

void PoolerTest::SetUp() {
    ASSERT_TRUE(server_ != nullptr);
    ASSERT_TRUE(server_->ok()) << server_->error();
    // Backends of the previous test's (killed) pooler go away asynchronously.
    ASSERT_TRUE(server_->wait_no_backends("usename <> 'postgres'", 10s))
        << "leftover backends: "
        << server_->exec("select pid, usename, state, query from pg_stat_activity").describe();
}

PoolerConfig PoolerTest::base_config(const std::string& pool_mode, int pool_size) {
    PoolerConfig c;
    c.database("db", server_->pooler_target());
    c.set("pool_mode", pool_mode);
    c.set("default_pool_size", pool_size);
    c.set("max_client_conn", 200);
    c.set("query_wait_timeout", 60);
    c.set("server_login_retry", 1);
    c.set("auth_type", "trust");
    c.auth(kApp, kAppPass).auth(kApp2, kApp2Pass);
    return c;
}

BackendSampler::BackendSampler(TempPostgres& pg, std::string where) : pg_(pg), where_(std::move(where)) {
    thread_ = std::thread([this] {
        long long previous = 0;
        while (!stop_.load()) {
            long long n = pg_.count_backends(where_);
            if (n > max_.load()) max_.store(n);
            long long sustained = std::min(n, previous);
            if (sustained > sustained_max_.load()) sustained_max_.store(sustained);
            previous = n;
            std::this_thread::sleep_for(20ms);
        }
    });
}

long long BackendSampler::stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
    return max_.load();
}

std::string http_get(int port, const std::string& path) {
    httplib::Client cli("127.0.0.1", port);
    auto res = cli.Get(path.c_str());
    return res && res->status == 200 ? res->body : std::string();
}

bool eventually(const std::function<bool()>& predicate, std::chrono::milliseconds timeout) {
    auto start = Clock::now();
    while (!predicate()) {
        if (Clock::now() - start > timeout) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

namespace {

// Ends the whole test process when one test runs longer than its budget, so that nothing can hang CI
// (children die with it through PDEATHSIG). Budget: POOLGUARD_IT_TEST_TIMEOUT seconds (default 120; 300
// for the `Load` suite).
class Watchdog : public ::testing::EmptyTestEventListener {
  public:
    void OnTestStart(const ::testing::TestInfo& info) override {
        std::lock_guard lock(state_->mutex);
        long seconds = std::atol(env_or("POOLGUARD_IT_TEST_TIMEOUT", "0").c_str());
        if (seconds <= 0) seconds = std::string(info.test_suite_name()) == "Load" ? 300 : 120;
        state_->name = std::string(info.test_suite_name()) + "." + info.name();
        state_->deadline = Clock::now() + std::chrono::seconds(seconds);
        state_->armed = true;
        state_->seconds = seconds;
        if (!state_->started) {
            state_->started = true;
            std::thread([s = state_] { s->run(); }).detach();
        }
        state_->cv.notify_all();
    }
    void OnTestEnd(const ::testing::TestInfo&) override {
        std::lock_guard lock(state_->mutex);
        state_->armed = false;
        state_->cv.notify_all();
    }

  private:
    struct State {
        std::mutex mutex;
        std::condition_variable cv;
        bool started = false;
        bool armed = false;
        long seconds = 0;
        Clock::time_point deadline;
        std::string name;

        void run() {
            std::unique_lock lock(mutex);
            while (true) {
                if (!armed) {
                    cv.wait(lock);
                    continue;
                }
                if (cv.wait_until(lock, deadline) == std::cv_status::timeout && armed &&
                    Clock::now() >= deadline) {
                    std::fprintf(stderr,
                                 "\nWATCHDOG: test %s still running after %ld s; aborting the test process\n",
                                 name.c_str(), seconds);
                    std::fflush(stdout);
                    std::fflush(stderr);
                    _exit(3);
                }
            }
        }
    };
    // Never destroyed (the detached thread may outlive the listener); a static pointer keeps it reachable.
    static State* shared_state() {
        static State* const state = new State;
        return state;
    }
    State* state_ = shared_state();
};

const bool kWatchdogRegistered = [] {
    ::testing::UnitTest::GetInstance()->listeners().Append(new Watchdog);
    return true;
}();

}  // namespace

std::vector<QueryResult> run_concurrently(const std::vector<std::string>& dsns, const std::string& sql) {
    std::vector<QueryResult> results(dsns.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < dsns.size(); ++i) {
        threads.emplace_back([&, i] {
            PgConn c(dsns[i], 20s);
            if (!c.ok()) {
                results[i].error = "connect failed: " + c.connect_error();
                return;
            }
            results[i] = c.exec(sql, 60s);
        });
    }
    for (auto& t : threads)
        t.join();
    return results;
}

}  // namespace itest
