// Owns the tests of net::async_wait_drained: a wait started right after a short read completes when new
// bytes arrive (and not before), with no system call to start it, and ends with operation_aborted when the
// socket is closed under it.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>

#include "net/drained_wait.h"

namespace poolguard::net {
namespace {

struct Pair {
    asio::io_context io{1};
    Socket ours{io};
    int theirs = -1;
    Pair() {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        ours.assign(asio::local::stream_protocol(), fds[0]);
        theirs = fds[1];
        ours.non_blocking(true);  // what asio's own asynchronous operations do first
    }
    ~Pair() {
        if (theirs >= 0) ::close(theirs);
    }
    void send(std::string_view s) { ASSERT_EQ(::send(theirs, s.data(), s.size(), 0), ssize_t(s.size())); }
    // io_context::run* stops once it runs out of work: restart before each turn.
    void poll() {
        io.restart();
        io.poll();
    }
    void run_one() {
        io.restart();
        io.run_one_for(std::chrono::seconds(5));
    }
    // Reads what is there; the queue is empty afterwards when fewer than 64 bytes came.
    std::string drain() {
        char buf[64];
        const ssize_t n = ::recv(ours.native_handle(), buf, sizeof buf, MSG_DONTWAIT);
        return n > 0 ? std::string(buf, size_t(n)) : std::string();
    }
};

TEST(DrainedWait, CompletesWhenNewBytesArriveAndNotBefore) {
    Pair p;
    ASSERT_TRUE(can_wait_drained(p.ours) || !p.ours.is_open());
    // Register the descriptor with the reactor the way the relays do (an asio wait first).
    p.send("a");
    bool first = false;
    p.ours.async_wait(asio::socket_base::wait_read, [&](std::error_code ec) { first = !ec; });
    p.run_one();
    ASSERT_TRUE(first);
    EXPECT_EQ(p.drain(), "a");
    ASSERT_TRUE(can_wait_drained(p.ours));

    std::optional<std::error_code> done;
    async_wait_drained(p.ours, [&](std::error_code ec) { done = ec; });
    p.poll();
    EXPECT_FALSE(done.has_value()) << "completed with nothing to read";
    p.send("b");
    p.run_one();
    ASSERT_TRUE(done.has_value());
    EXPECT_FALSE(*done);
    EXPECT_EQ(p.drain(), "b");

    // Again, on the same descriptor: every wait is a fresh operation.
    done.reset();
    async_wait_drained(p.ours, [&](std::error_code ec) { done = ec; });
    p.poll();
    EXPECT_FALSE(done.has_value());
    p.send("c");
    p.run_one();
    ASSERT_TRUE(done.has_value());
    EXPECT_EQ(p.drain(), "c");
}

TEST(DrainedWait, PeerCloseCompletesTheWait) {
    Pair p;
    p.send("a");
    p.ours.async_wait(asio::socket_base::wait_read, [](std::error_code) {});
    p.run_one();
    EXPECT_EQ(p.drain(), "a");
    std::optional<std::error_code> done;
    async_wait_drained(p.ours, [&](std::error_code ec) { done = ec; });
    ::close(p.theirs);
    p.theirs = -1;
    p.run_one();
    ASSERT_TRUE(done.has_value());
    char b;
    EXPECT_EQ(::recv(p.ours.native_handle(), &b, 1, MSG_DONTWAIT), 0);  // end of stream
}

TEST(DrainedWait, ClosingTheSocketAbortsThePendingWait) {
    Pair p;
    p.send("a");
    p.ours.async_wait(asio::socket_base::wait_read, [](std::error_code) {});
    p.run_one();
    EXPECT_EQ(p.drain(), "a");
    std::optional<std::error_code> done;
    async_wait_drained(p.ours, [&](std::error_code ec) { done = ec; });
    p.poll();
    EXPECT_FALSE(done.has_value());
    p.ours.close();
    p.run_one();
    ASSERT_TRUE(done.has_value());
    EXPECT_EQ(*done, asio::error::operation_aborted);
    EXPECT_FALSE(can_wait_drained(p.ours));
}

TEST(DrainedWait, WorksFromACoroutineWithTheNothrowToken) {
    Pair p;
    p.send("a");
    std::string got;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
            auto [ec] = co_await p.ours.async_wait(asio::socket_base::wait_read, use_nothrow);
            if (ec) co_return;
            got += p.drain();
            auto [ec2] = co_await async_wait_drained(p.ours, use_nothrow);
            if (ec2) co_return;
            got += p.drain();
        },
        LogIfThrown{"test"});
    p.poll();
    EXPECT_EQ(got, "a");
    p.send("b");
    p.io.restart();
    p.io.run_for(std::chrono::seconds(5));
    EXPECT_EQ(got, "ab");
}

}  // namespace
}  // namespace poolguard::net
