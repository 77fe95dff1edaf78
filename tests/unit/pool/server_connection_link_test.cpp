// Owns the unit tests of ServerConnection's linking invariants (no socket, no server: state only).
#include <gtest/gtest.h>

#include <asio.hpp>
#include <memory>

#include "net/socket.h"
#include "pool/server_connection.h"

namespace poolguard::pool {
namespace {

class FakeClient : public LinkedClient {
  public:
    explicit FakeClient(asio::io_context& io) : socket_(net::Socket(io)) {}
    std::shared_ptr<LinkedClient> keep_alive() override { return {}; }  // no relay runs in these tests
    net::Stream& client_socket() override { return socket_; }
    net::WriteGate& client_write_gate() override { return gate_; }
    protocol::pg::ClientStatements* client_statements() override { return nullptr; }
    void on_server_parameter(const std::string&, const std::string&) override {}
    void on_server_released() override {}
    void on_server_lost(const protocol::pg::ErrorFields&) override { ++lost; }
    void on_protocol_refusal(const protocol::pg::ErrorFields&) override {}
    void on_bytes_to_client(size_t) override {}
    int lost = 0;

  private:
    net::Stream socket_;
    net::WriteGate gate_;
};

// The race Fault.FastRestartUnderLoad hit about 1 run in 6: the pool hands a server to a waiting client, the
// backend's FATAL (57P01) closes it before the client's coroutine resumes, and the client links it. Linking
// used to set the state back to active, so the client's closed() check passed and its BEGIN went to a dead
// socket: the client hung. A closed server stays closed and unlinked.
TEST(ServerConnectionLink, LinkingAClosedServerKeepsItClosedAndUnlinked) {
    asio::io_context io;
    auto server = std::make_shared<ServerConnection>(io.get_executor(), nullptr, 1);
    server->close("server closed the connection: terminating connection due to administrator command");
    ASSERT_TRUE(server->closed());
    FakeClient client(io);
    server->link(&client);
    EXPECT_TRUE(server->closed());
    EXPECT_EQ(server->state(), ServerConnection::State::kClosed);
    EXPECT_EQ(server->linked_client(), nullptr);
    EXPECT_EQ(client.lost, 0);  // nothing to tell: the client never used it
}

TEST(ServerConnectionLink, LinkingAnOpenServerMakesItActive) {
    asio::io_context io;
    auto server = std::make_shared<ServerConnection>(io.get_executor(), nullptr, 2);
    FakeClient client(io);
    server->link(&client);
    EXPECT_FALSE(server->closed());
    EXPECT_EQ(server->state(), ServerConnection::State::kActive);
    EXPECT_EQ(server->linked_client(), &client);
    server->unlink();
    EXPECT_EQ(server->linked_client(), nullptr);
}

}  // namespace
}  // namespace poolguard::pool
