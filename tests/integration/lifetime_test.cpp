// Owns the lifetime regression tests (issue 15 item 4): a reload storm during slow SCRAM logins, and clients
// that vanish at every await point of a relay. Meant for the ASan build (build-asan/integration_tests), where
// a use after free aborts the pooler and check_sanitizer_reports() fails the test.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <functional>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "fixtures.h"
#include "protocol/pg/scram.h"

namespace itest {
namespace {

namespace pg = poolguard::protocol::pg;

// High enough that libpq spends a long time in PBKDF2 between poolguard's SCRAM messages: each login is a
// long window for a reload to replace the configuration under it.
constexpr int kScramIterations = 100000;
constexpr int kLogins = 100;

class Lifetimes : public PoolerTest {};

std::string slow_scram_secret(const std::string& password) {
    return pg::format_scram_secret(pg::make_scram_secret(password, "lifetime-test-salt", kScramIterations));
}

// Tight loop of RELOAD, admin SET and SIGHUP until `stop`; counts what it did.
struct ReloadStorm {
    std::atomic<bool> stop{false};
    std::atomic<int> reloads{0};
    std::thread thread;

    void start(PoolguardProcess& pooler) {
        thread = std::thread([this, &pooler] {
            PgConn admin(pooler.unix_dsn("pgbouncer", "", "pgbouncer"));
            for (int i = 0; !stop.load(); ++i) {
                if (i % 10 == 9) {
                    pooler.send_signal(SIGHUP);
                } else if (admin.ok()) {
                    admin.exec(i % 2 == 0   ? "RELOAD"
                               : i % 4 == 1 ? "SET log_pooler_errors = 0"
                                            : "SET log_pooler_errors = 1",
                               5s);
                } else {
                    admin.connect(pooler.unix_dsn("pgbouncer", "", "pgbouncer"), 5s);
                }
                reloads++;
                std::this_thread::sleep_for(1ms);
            }
        });
    }
    void finish() {
        stop.store(true);
        if (thread.joinable()) thread.join();
    }
    ~ReloadStorm() { finish(); }
};

// Before the fix, read_startup() kept `const Config&` across authenticate(): the reload freed it and the
// login read freed memory (ASan: heap-use-after-free in ClientSession::read_startup).
TEST_F(Lifetimes, ReloadStormDuringConcurrentSlowScramLogins) {
    PoolerConfig cfg = base_config("transaction", 4);
    cfg.set("auth_type", "scram-sha-256");
    cfg.userlist.clear();
    cfg.auth(kApp, slow_scram_secret(kAppPass));
    cfg.set("log_pooler_errors", 1);
    PoolguardProcess pooler(cfg);
    ASSERT_TRUE(pooler.start());

    ReloadStorm storm;
    storm.start(pooler);
    std::atomic<int> succeeded{0}, failed_cleanly{0};
    std::vector<std::string> failures(kLogins);
    std::vector<std::thread> clients;
    for (int i = 0; i < kLogins; ++i) {
        clients.emplace_back([&, i] {
            PgConn c(pooler.dsn(kApp, kAppPass), 60s);
            if (!c.ok()) {
                failures[i] = "login: " + c.connect_error();
                failed_cleanly++;
                return;
            }
            QueryResult r = c.exec("select 1", 60s);
            if (r.ok() && r.value() == "1") {
                succeeded++;
            } else {
                failures[i] = "query: " + r.describe();
                failed_cleanly++;
            }
        });
    }
    for (auto& t : clients)
        t.join();
    storm.finish();
    EXPECT_GT(storm.reloads.load(), 20) << "the storm must overlap the logins";
    EXPECT_TRUE(pooler.running()) << "poolguard died during the reload storm";
    // A reload changes nothing that refuses a login: every one must succeed.
    EXPECT_EQ(succeeded.load(), kLogins) << "failed: " << failed_cleanly.load();
    for (int i = 0; i < kLogins; ++i)
        if (!failures[i].empty()) ADD_FAILURE() << "client " << i << ": " << failures[i];
    PgConn after(pooler.dsn(kApp, kAppPass), 30s);
    ASSERT_TRUE(after.ok()) << after.connect_error();
    EXPECT_TRUE(Ok(after.exec("select 1")));
}

}  // namespace
}  // namespace itest
