// Owns the integration test of cancel_wait_timeout (issue 13): a cancel request the server does not take
// (its postmaster stopped with SIGSTOP) is given up on after cancel_wait_timeout, not waited for forever.
#include <gtest/gtest.h>
#include <signal.h>

#include "fixtures.h"

namespace itest {
namespace {

class CancelWait : public PoolerTest {};

// Resumes the postmaster however the test ends.
struct Continue {
    pid_t pid;
    ~Continue() { ::kill(pid, SIGCONT); }
};

TEST_F(CancelWait, UndeliverableCancelIsGivenUpAfterTheTimeout) {
    if (PoolguardProcess::testing_pgbouncer())
        GTEST_SKIP()
            << "PgBouncer 1.25.2 logs no line for a cancel it gives up on; the check reads poolguard's";
    auto cfg = base_config("transaction", 2);
    cfg.set("cancel_wait_timeout", 1);
    PoolguardProcess p(cfg);
    ASSERT_TRUE(p.start());
    PgConn c(p.dsn(kApp, kAppPass));
    ASSERT_TRUE(Ok(c.exec("SELECT 1")));
    ASSERT_TRUE(c.send("SELECT pg_sleep(3)"));
    std::this_thread::sleep_for(300ms);
    {
        ASSERT_EQ(::kill(pg().pid(), SIGSTOP), 0);
        Continue resume{pg().pid()};
        std::string error;
        EXPECT_TRUE(c.cancel(&error)) << error;  // poolguard takes the request and answers at once
        const auto start = std::chrono::steady_clock::now();
        EXPECT_TRUE(p.wait_for_log("not delivered within 1000 ms (cancel_wait_timeout)", 4s))
            << p.log_contents();
        const auto waited = std::chrono::steady_clock::now() - start;
        EXPECT_GE(waited, 700ms);
    }
    // The query ends either way (cancelled once the postmaster reads the request, or finished).
    auto r = c.wait(15s);
    EXPECT_FALSE(r.timed_out) << r.describe();
    PgConn after(p.dsn(kApp, kAppPass));
    EXPECT_TRUE(Ok(after.exec("SELECT 1")));
}

}  // namespace
}  // namespace itest
