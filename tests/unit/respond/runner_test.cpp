// Tests ResponderRunner's journaling of io-thread actions: a close_pool_server / end_client decision is
// journaled with what the io thread reported (acted, or skipped because the session moved on), never as
// "acted" before the io thread looked; signals are journaled at once.
#include "respond/runner.h"

#include <gtest/gtest.h>

#include "respond/guard.h"

namespace poolguard::respond {
namespace {

using dbview::Session;
using dbview::SessionState;

dbview::Snapshot snapshot_with(std::vector<std::pair<int64_t, SessionState>> sessions, double age) {
    dbview::Snapshot s;
    s.max_connections = 100;
    for (auto [pid, state] : sessions) {
        Session x;
        x.id = pid;
        x.state = state;
        x.user = "app";
        x.application = "web";
        x.state_age_s = age;
        s.sessions.push_back(x);
    }
    return s;
}

struct Recorder {
    std::vector<nlohmann::json> journal;
    std::vector<std::pair<Decision, std::function<void(bool, std::string)>>> posted;
    std::vector<int64_t> terminated;

    ResponderRunner::Hooks hooks() {
        ResponderRunner::Hooks h;
        h.cancel_backend = [](int64_t) -> Status { return {}; };
        h.terminate_backend = [this](int64_t pid) -> Status {
            terminated.push_back(pid);
            return {};
        };
        h.post_to_io = [this](const Decision& d, std::function<void(bool, std::string)> done) {
            posted.emplace_back(d, std::move(done));
        };
        h.journal = [this](const nlohmann::json& j) { journal.push_back(j); };
        return h;
    }
    std::vector<nlohmann::json> with_action(const std::string& action) const {
        std::vector<nlohmann::json> out;
        for (const auto& j : journal)
            if (j.value("action", "") == action) out.push_back(j);
        return out;
    }
};

TEST(ResponderRunner, IoThreadActionsAreJournaledWithWhatTheIoThreadDid) {
    guard().reset(Mode::on);
    ResponderSettings s;
    s.kill_idle_after_s = 300;
    s.kill_leak_after_s = 60;
    s.max_actions_per_minute = 100;
    Recorder r;
    ResponderRunner runner("db", s, r.hooks());

    // Three idle servers of poolguard's pool (min_pool_size 1) and one idle outside backend.
    std::vector<PooledServer> servers;
    for (int pid : {10, 11, 12})
        servers.push_back(PooledServer{pid, "db", "app", true, 3, 1, 0});
    auto snap = snapshot_with({{5, SessionState::idle},
                               {10, SessionState::idle},
                               {11, SessionState::idle},
                               {12, SessionState::idle}},
                              400);
    runner.run(snap, servers, 0);

    // The outside backend is terminated and journaled at once; the pool's servers are only handed over.
    EXPECT_EQ(r.terminated, (std::vector<int64_t>{5}));
    ASSERT_EQ(r.posted.size(), 2u);
    EXPECT_TRUE(r.with_action("close_pool_server").empty()) << "journaled before the io thread acted";
    ASSERT_EQ(r.with_action("terminate").size(), 1u);
    EXPECT_EQ(r.with_action("terminate")[0]["severity"], "acted");

    // The io thread closes one server and finds the other no longer idle.
    r.posted[0].second(true, "closed an idle server");
    r.posted[1].second(false, "no idle server any more: nothing closed");
    runner.run(snapshot_with({}, 0), {}, 1);  // the next pass journals both
    const auto closed = r.with_action("close_pool_server");
    ASSERT_EQ(closed.size(), 2u);
    EXPECT_EQ(closed[0]["severity"], "acted");
    EXPECT_NE(closed[0]["summary"].get<std::string>().find("closed an idle server"), std::string::npos);
    EXPECT_EQ(closed[1]["severity"], "skipped");
    EXPECT_NE(closed[1]["summary"].get<std::string>().find("nothing closed"), std::string::npos);

    const auto counters = guard().counters();
    EXPECT_EQ(counters.at({"terminate_idle", "acted"}), 2u);  // the outside backend and one server
    EXPECT_EQ(counters.at({"terminate_idle", "skipped"}), 1u);
    // Nothing is journaled twice.
    runner.run(snapshot_with({}, 0), {}, 2);
    EXPECT_EQ(r.with_action("close_pool_server").size(), 2u);
    guard().reset(Mode::dry_run);
}

}  // namespace
}  // namespace poolguard::respond
