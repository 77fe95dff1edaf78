// Unit tests of priority classes: [classes] line parsing and config errors, glob matching, class selection,
// the priority waiter queue and share accounting (PriorityWaitQueue, class_cap).
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "config/classes.h"
#include "config/config.h"
#include "pool/priority_classes.h"

namespace poolguard {
namespace {

using config::glob_match;

TEST(ClassesGlob, Matches) {
    EXPECT_TRUE(glob_match("*", ""));
    EXPECT_TRUE(glob_match("*", "anything"));
    EXPECT_TRUE(glob_match("batch*", "batch-7"));
    EXPECT_FALSE(glob_match("batch*", "web"));
    EXPECT_TRUE(glob_match("*-job-?", "etl-job-3"));
    EXPECT_FALSE(glob_match("*-job-?", "etl-job-33"));
    EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
    EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
    EXPECT_TRUE(glob_match("web", "web"));
    EXPECT_FALSE(glob_match("web", "web2"));
    EXPECT_FALSE(glob_match("", "x"));
    EXPECT_TRUE(glob_match("**x", "abx"));
}

TEST(ClassesParse, FullLine) {
    auto c =
        config::parse_class_line("batch", "application_name=batch*, user=etl_?, priority=10, max_share=40%");
    ASSERT_TRUE(c) << c.error().message;
    EXPECT_EQ(c->application_name, "batch*");
    EXPECT_EQ(c->user, "etl_?");
    EXPECT_EQ(c->priority, 10);
    EXPECT_EQ(c->max_share, 40);
}

TEST(ClassesParse, Defaults) {
    auto c = config::parse_class_line("web", "priority=0");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->application_name, "*");
    EXPECT_EQ(c->user, "*");
    EXPECT_EQ(c->max_share, 100);
}

TEST(ClassesParse, Errors) {
    auto msg = [](const char* name, const char* value) {
        auto c = config::parse_class_line(name, value);
        EXPECT_FALSE(c) << value;
        return c ? std::string() : c.error().message;
    };
    EXPECT_NE(msg("b", "priority=x").find("for priority in class 'b'"), std::string::npos);
    EXPECT_NE(msg("b", "max_share=0").find("max_share"), std::string::npos);
    EXPECT_NE(msg("b", "max_share=101").find("max_share"), std::string::npos);
    EXPECT_NE(msg("b", "colour=red").find("unknown parameter 'colour'"), std::string::npos);
    EXPECT_NE(msg("b", "priority").find("expected key=value"), std::string::npos);
    EXPECT_NE(msg("b", "priority=1, priority=2").find("given twice"), std::string::npos);
    EXPECT_NE(msg("b c", "priority=1").find("invalid class name"), std::string::npos);
}

TEST(ClassesConfig, BadLineNamesFileLineAndParameter) {
    auto r = config::parse_config(
        "[pgbouncer]\nauth_type = trust\n[classes]\nbatch = application_name=b*, max_share=150\n",
        "/etc/pg.ini");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("/etc/pg.ini:4:"), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find("max_share"), std::string::npos) << r.error().message;
}

TEST(ClassesConfig, LoadsInFileOrderAndSelects) {
    auto r = config::parse_config(
        "[pgbouncer]\nauth_type = trust\n[classes]\n"
        "batch = application_name=batch*, priority=10, max_share=40\n"
        "admin = user=admin, priority=0\n"
        "default = priority=5\n",
        "/etc/pg.ini");
    ASSERT_TRUE(r) << r.error().message;
    const auto classes = config::effective_classes(r->config.classes);
    ASSERT_EQ(classes.size(), 3u);
    EXPECT_EQ(classes[0].name, "default");
    EXPECT_EQ(classes[0].priority, 5);
    EXPECT_EQ(classes[1].name, "batch");
    EXPECT_EQ(config::match_class(classes, "batch-1", "app"), 1);
    EXPECT_EQ(config::match_class(classes, "psql", "admin"), 2);
    EXPECT_EQ(config::match_class(classes, "batch-1", "admin"), 1);  // first match in file order
    EXPECT_EQ(config::match_class(classes, "web", "app"), 0);
}

TEST(ClassesConfig, DuplicateClassRefused) {
    auto r = config::parse_config(
        "[pgbouncer]\nauth_type = trust\n[classes]\nb = priority=1\nb = priority=2\n", "/etc/pg.ini");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("/etc/pg.ini:5:"), std::string::npos) << r.error().message;
}

TEST(ClassCap, Rounding) {
    EXPECT_EQ(pool::class_cap(100, 20), INT_MAX);
    EXPECT_EQ(pool::class_cap(50, 20), 10);
    EXPECT_EQ(pool::class_cap(40, 5), 2);
    EXPECT_EQ(pool::class_cap(10, 5), 1);  // rounded up
    EXPECT_EQ(pool::class_cap(1, 0), 1);   // at least one
}

struct W {
    int id;
};

TEST(PriorityWaitQueue, ServesByPriorityThenArrival) {
    pool::PriorityWaitQueue<W> q;
    q.configure({5, 0, 10}, {INT_MAX, INT_MAX, INT_MAX});  // default=5, web=0, batch=10
    W b1{1}, d1{2}, w1{3}, w2{4}, b2{5};
    q.push(2, &b1);
    q.push(0, &d1);
    q.push(1, &w1);
    q.push(1, &w2);
    q.push(2, &b2);
    EXPECT_EQ(q.size(), 5u);
    int cls = -1;
    EXPECT_EQ(q.pop_next(&cls), &w1);
    EXPECT_EQ(cls, 1);
    EXPECT_EQ(q.pop_next(), &w2);
    EXPECT_EQ(q.pop_next(), &d1);
    EXPECT_EQ(q.pop_next(), &b1);
    EXPECT_EQ(q.pop_next(), &b2);
    EXPECT_EQ(q.pop_next(), nullptr);
    EXPECT_TRUE(q.empty());
}

TEST(PriorityWaitQueue, EqualPrioritiesAreFifoAcrossClasses) {
    pool::PriorityWaitQueue<W> q;
    q.configure({0, 0}, {INT_MAX, INT_MAX});
    W a{1}, b{2}, c{3};
    q.push(1, &a);
    q.push(0, &b);
    q.push(1, &c);
    EXPECT_EQ(q.pop_next(), &a);
    EXPECT_EQ(q.pop_next(), &b);
    EXPECT_EQ(q.pop_next(), &c);
}

TEST(PriorityWaitQueue, ShareCapHoldsClassBack) {
    pool::PriorityWaitQueue<W> q;
    q.configure({0, 10}, {INT_MAX, 2});  // batch (1) may hold 2 servers
    W b1{1}, b2{2}, b3{3}, w1{4};
    q.hold(1);
    q.hold(1);
    EXPECT_TRUE(q.at_cap(1));
    q.push(1, &b1);
    q.push(1, &b2);
    EXPECT_FALSE(q.has_eligible());
    EXPECT_EQ(q.eligible(), 0u);
    EXPECT_EQ(q.pop_next(), nullptr);  // a freed server stays idle rather than go over the share
    q.push(0, &w1);
    EXPECT_EQ(q.eligible(), 1u);
    EXPECT_EQ(q.pop_next(), &w1);
    q.unhold(1);
    EXPECT_EQ(q.eligible(), 1u);  // one slot of share left, two waiting
    q.push(1, &b3);
    EXPECT_EQ(q.pop_next(), &b1);
    q.hold(1);
    EXPECT_EQ(q.pop_next(), nullptr);
    q.unhold(1);
    q.unhold(1);
    q.unhold(1);  // never below zero
    EXPECT_EQ(q.held(1), 0);
    EXPECT_EQ(q.eligible(), 2u);
}

// query_wait_timeout with classes: an expired web waiter keeps waiting while batch waiters are queued; the
// newest batch waiter is refused in its place; expired waiters with nobody below them are refused.
TEST(PriorityWaitQueue, TimedOutWaitsRefuseTheLowestPriorityFirst) {
    pool::PriorityWaitQueue<W> q;
    q.configure({0, 5, 10}, {INT_MAX, INT_MAX, INT_MAX});  // web=0, default=5, batch=10
    W web{1}, def{2}, b1{3}, b2{4}, b3{5};
    q.push(0, &web);
    q.push(1, &def);
    q.push(2, &b1);
    q.push(2, &b2);
    q.push(2, &b3);
    std::set<int> expired{1, 2};  // web and default timed out; the batch waiters have not
    std::vector<int> spared;
    auto refused = q.take_timed_out([&](W* w) { return expired.contains(w->id); },
                                    [&](W* w) {
                                        spared.push_back(w->id);
                                        expired.erase(w->id);
                                        return true;
                                    });
    ASSERT_EQ(refused.size(), 2u);
    EXPECT_EQ(refused[0], &b3);  // for web (most important first): the newest batch waiter
    EXPECT_EQ(refused[1], &b2);  // for default: the next newest batch waiter
    EXPECT_EQ(spared, (std::vector<int>{1, 2}));
    EXPECT_EQ(q.size(), 3u);
    // The batch waiter times out: nobody is below it, it is refused itself.
    expired = {3};
    refused = q.take_timed_out([&](W* w) { return expired.contains(w->id); }, [](W*) { return true; });
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0], &b1);
    // web times out again and may not be spared twice: refused although default (below it) still waits.
    expired = {1};
    refused = q.take_timed_out([&](W* w) { return expired.contains(w->id); }, [](W*) { return false; });
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_EQ(refused[0], &web);
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.pop_next(), &def);
}

TEST(PriorityWaitQueue, TimedOutWaitsWithoutClassesAreRefusedThemselves) {
    pool::PriorityWaitQueue<W> q;
    W a{1}, b{2}, c{3};
    q.push(0, &a);
    q.push(0, &b);
    q.push(0, &c);
    int spare_calls = 0;
    auto refused = q.take_timed_out([](W* w) { return w->id <= 2; }, [&](W*) { return ++spare_calls > 0; });
    EXPECT_EQ(refused, (std::vector<W*>{&a, &b}));
    EXPECT_EQ(spare_calls, 0);  // equal priorities never stand in for each other
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.pop_next(), &c);
}

TEST(PriorityWaitQueue, LowestPriorityNewestRefusedFirst) {
    pool::PriorityWaitQueue<W> q;
    q.configure({0, 10}, {INT_MAX, INT_MAX});
    W w1{1}, b1{2}, b2{3}, w2{4};
    q.push(0, &w1);
    q.push(1, &b1);
    q.push(1, &b2);
    q.push(0, &w2);
    int cls = -1;
    EXPECT_EQ(q.pop_lowest(&cls), &b2);
    EXPECT_EQ(cls, 1);
    EXPECT_EQ(q.pop_lowest(), &b1);
    EXPECT_EQ(q.pop_lowest(), &w2);
    EXPECT_EQ(q.pop_lowest(), &w1);
    EXPECT_EQ(q.pop_lowest(), nullptr);
}

TEST(PriorityWaitQueue, EraseByHandleAndScan) {
    pool::PriorityWaitQueue<W> q;
    q.configure({0, 1}, {INT_MAX, INT_MAX});
    W a{1}, b{2}, c{3};
    auto ha = q.push(0, &a);
    q.push(1, &b);
    q.push(1, &c);
    q.erase(0, ha);
    EXPECT_EQ(q.size(), 2u);
    q.erase_if([](W* w) { return w->id == 3; });
    EXPECT_EQ(q.size(), 1u);
    EXPECT_EQ(q.pop_next(), &b);
}

TEST(PriorityWaitQueue, OutOfRangeClassIsDefaultAndReloadKeepsWaiters) {
    pool::PriorityWaitQueue<W> q;
    q.configure({0, 10, 20}, {INT_MAX, INT_MAX, INT_MAX});
    W a{1}, b{2};
    q.push(2, &a);
    q.push(7, &b);  // unknown -> default
    EXPECT_EQ(q.waiting(0), 1u);
    q.configure({0}, {INT_MAX});  // class 2 removed by a reload: its waiter is still served
    EXPECT_EQ(q.class_count(), 3u);
    EXPECT_EQ(q.size(), 2u);
    EXPECT_NE(q.pop_next(), nullptr);
    EXPECT_NE(q.pop_next(), nullptr);
}

}  // namespace
}  // namespace poolguard
