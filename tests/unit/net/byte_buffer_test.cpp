// Owns the tests of net::ByteBuffer (lazy allocation, compaction, release) and net::send_available (the
// relay's non-blocking write fast path).
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <string>

#include "net/byte_buffer.h"
#include "net/fast_write.h"

namespace poolguard::net {
namespace {

void put(ByteBuffer& b, std::string_view s) {
    char* p = b.write_ptr(s.size());
    ASSERT_GE(b.write_space(), s.size());
    std::memcpy(p, s.data(), s.size());
    b.commit(s.size());
}

TEST(ByteBuffer, AllocatesOnFirstWriteAtLeastTheInitialCapacity) {
    ByteBuffer b(1024);
    EXPECT_TRUE(b.empty());
    EXPECT_EQ(b.write_space(), 0u);  // nothing allocated yet
    EXPECT_EQ(b.view().size(), 0u);
    b.write_ptr(10);
    EXPECT_EQ(b.write_space(), 1024u);
}

TEST(ByteBuffer, KeepsUnreadBytesAcrossCompactionAndGrowth) {
    ByteBuffer b(8);
    put(b, "abcdefgh");
    b.consume(5);
    EXPECT_EQ(b.view(), "fgh");
    put(b, "ijklmnopqrstuvwxyz");  // moves "fgh" to the front, then grows
    EXPECT_EQ(b.view(), "fghijklmnopqrstuvwxyz");
    b.consume(b.size());
    EXPECT_TRUE(b.empty());
}

TEST(ByteBuffer, ShrinkIfIdleReleasesOnlyWhenEmpty) {
    ByteBuffer b(64);
    put(b, "abc");
    b.shrink_if_idle(0);
    EXPECT_EQ(b.view(), "abc");  // unread bytes are never dropped
    b.consume(3);
    b.shrink_if_idle(0);
    EXPECT_EQ(b.write_space(), 0u);
    put(b, "again");
    EXPECT_EQ(b.view(), "again");
}

TEST(ByteBuffer, ReserveUnreadGrowsTowardAWholeMessage) {
    ByteBuffer b(16);
    put(b, "12345");
    b.reserve_unread(100000);
    // One geometric step past what is unread, not the announced size.
    EXPECT_GE(b.size() + b.write_space(), 5u + 64 * 1024);
    EXPECT_LT(b.size() + b.write_space(), 100000u);
    EXPECT_EQ(b.view(), "12345");
}

TEST(SendAvailable, SendsEverythingThatFitsAndAdvancesPastAPartialSend) {
    asio::io_context io;
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    Socket a(io, asio::generic::stream_protocol(AF_UNIX, 0), fds[0]);
    Socket b(io, asio::generic::stream_protocol(AF_UNIX, 0), fds[1]);

    std::string head = "hello ";
    std::string tail = "world";
    std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(tail)};
    std::error_code ec;
    EXPECT_EQ(send_available(a, bufs, ec), 11u);
    EXPECT_FALSE(ec);
    EXPECT_EQ(bytes_left(bufs), 0u);
    char got[16] = {};
    ASSERT_EQ(::recv(fds[1], got, sizeof got, 0), 11);
    EXPECT_EQ(std::string(got, 11), "hello world");

    // A full socket takes part of a large burst; the buffers then describe exactly the rest.
    const std::string big(8 << 20, 'x');
    std::array<asio::const_buffer, 2> big_bufs{asio::buffer(big), asio::const_buffer()};
    const size_t sent = send_available(a, big_bufs, ec);
    EXPECT_FALSE(ec);
    EXPECT_GT(sent, 0u);
    EXPECT_LT(sent, big.size());
    EXPECT_EQ(bytes_left(big_bufs), big.size() - sent);
    EXPECT_EQ(send_available(a, big_bufs, ec), 0u);  // still full: would block, not an error
    EXPECT_FALSE(ec);

    // A closed peer is an error, not a blocked write (and no SIGPIPE).
    b.close();
    send_available(a, big_bufs, ec);
    EXPECT_TRUE(ec);
}

}  // namespace
}  // namespace poolguard::net
