// Unit tests of the listener hand-off helpers: the socket names, finding siblings in /proc/net/unix text, and
// passing a listening socket over a socketpair with a connection queued on it.
#include "net/listener_handoff.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace poolguard::net::handoff {
namespace {

TEST(ListenerHandoff, SiblingsAreFoundByPortWithoutSelfNewestFirst) {
    const std::string text =
        "Num       RefCount Protocol Flags    Type St Inode Path\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 1001 @" +
        socket_name(6432, 100) +
        "\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 1002 @" +
        socket_name(6432, 250) +
        "\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 1003 @" +
        socket_name(6432, 77) +
        "\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 1004 @" +
        socket_name(64320, 300) +
        "\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 1005 @" +
        socket_name(6432, 250) + "x\n" + "0000000000000000: 00000002 00000000 00010000 0001 01 1006 /run/" +
        socket_name(6432, 400) +
        "\n"
        "0000000000000000: 00000003 00000000 00000000 0001 03 1007\n"
        "0000000000000000: 00000002 00000000 00010000 0001 01 1008 @" +
        socket_name(6432, 250);  // the same pid twice (no trailing newline)
    EXPECT_EQ(sibling_pids(text, 6432, 77), (std::vector<pid_t>{250, 100}));
    EXPECT_EQ(sibling_pids(text, 64320, 77), (std::vector<pid_t>{300}));
    EXPECT_TRUE(sibling_pids(text, 5432, 77).empty());
    EXPECT_TRUE(sibling_pids("", 6432, 77).empty());
}

int listen_on_loopback(int& port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 16) != 0) return -1;
    socklen_t len = sizeof addr;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
    return fd;
}

// The property the rolling restart relies on: a connection queued on a listener survives the sender closing
// its descriptor, and the receiver accepts it.
TEST(ListenerHandoff, QueuedConnectionSurvivesTheSenderClosingItsListener) {
    int port = 0;
    const int listener = listen_on_loopback(port);
    ASSERT_GE(listener, 0);
    EXPECT_EQ(listening_tcp_port(listener), port);

    const int client = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);  // queued, not accepted

    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    std::error_code ec;
    const int to_send[] = {listener};
    ASSERT_TRUE(send_fds(pair[0], to_send, ec)) << ec.message();
    ::close(listener);

    std::vector<int> received = receive_fds(pair[1], 4, ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_EQ(received.size(), 1u);
    EXPECT_EQ(listening_tcp_port(received[0]), port);
    const int accepted = ::accept4(received[0], nullptr, nullptr, SOCK_CLOEXEC);
    ASSERT_GE(accepted, 0) << "the queued connection was lost with the sender's descriptor";
    ASSERT_EQ(::send(client, "x", 1, MSG_NOSIGNAL), 1);
    char c = 0;
    EXPECT_EQ(::recv(accepted, &c, 1, 0), 1);
    EXPECT_EQ(c, 'x');

    const auto creds = peer_credentials(pair[1]);
    ASSERT_TRUE(creds.has_value());
    EXPECT_EQ(creds->uid, ::geteuid());
    EXPECT_EQ(creds->pid, ::getpid());

    for (int fd : {accepted, client, received[0], pair[0], pair[1]})
        ::close(fd);
}

TEST(ListenerHandoff, MessagesWithoutDescriptorsOrTooManyAreRefused) {
    int pair[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    std::error_code ec;
    ASSERT_EQ(::send(pair[0], "L", 1, 0), 1);  // a message with no descriptors
    EXPECT_TRUE(receive_fds(pair[1], 4, ec).empty());
    EXPECT_TRUE(ec);

    const int three[] = {pair[0], pair[0], pair[0]};
    ASSERT_TRUE(send_fds(pair[0], three, ec));
    EXPECT_TRUE(receive_fds(pair[1], 2, ec).empty()) << "more descriptors than asked for must be refused";
    EXPECT_TRUE(ec);

    EXPECT_FALSE(send_fds(pair[0], {}, ec));
    EXPECT_FALSE(listening_tcp_port(pair[0]).has_value()) << "a unix socket is not a TCP listener";

    ::close(pair[0]);
    EXPECT_TRUE(receive_fds(pair[1], 4, ec).empty());
    EXPECT_TRUE(ec) << "end of stream";
    ::close(pair[1]);
}

}  // namespace
}  // namespace poolguard::net::handoff
