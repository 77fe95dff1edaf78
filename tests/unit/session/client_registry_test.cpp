// Unit tests of the client registry's lifetime (issue 15 item 4): a ClientSession leaves the proxy's registry
// on every exit path, its coroutine frames destroyed without finishing included (what an exception escaping
// run() does), and a session that outlives its Proxy (the io_context is destroyed after it) does not touch
// it.
#include <gtest/gtest.h>

#include <asio.hpp>
#include <chrono>
#include <memory>

#include "config/config.h"
#include "net/socket.h"
#include "session/client_session.h"
#include "session/proxy.h"

namespace poolguard::session {
namespace {

using namespace std::chrono_literals;

// A connected loopback pair on `io`: the client end and the accepted end as poolguard holds it.
struct LoopbackPair {
    asio::ip::tcp::socket client;
    net::Socket accepted;
    explicit LoopbackPair(asio::io_context& io) : client(io), accepted(io) {
        asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
        client.connect(acceptor.local_endpoint());
        accepted = net::Socket(acceptor.accept());
    }
};

std::shared_ptr<const config::Config> test_config() {
    auto cfg = std::make_shared<config::Config>();
    cfg->client_login_timeout = std::chrono::seconds(60);
    return cfg;
}

// Before the fix the session registered in run() and unregistered only in finish(): a frame destroyed on
// the way (here by its io_context, as an exception unwinding run() would) left a dangling pointer in the
// registry, which SHOW CLIENTS, KILL or a cancel request then dereferenced.
TEST(ClientRegistry, SessionWhoseFramesAreDestroyedMidLoginLeavesTheRegistry) {
    asio::io_context proxy_io;
    Proxy proxy(proxy_io, test_config());
    uint32_t pid = 0, key = 0;
    {
        asio::io_context io;
        LoopbackPair pair(io);
        auto session = std::make_shared<ClientSession>(proxy, std::move(pair.accepted), 1);
        asio::co_spawn(io, session->run(), asio::detached);
        io.run_for(100ms);  // run() starts (and takes its own reference), then waits for a startup packet
        session.reset();    // held by its frames only, as Proxy::start_client leaves it
        ASSERT_EQ(proxy.client_count(), 1u);
        pid = proxy.clients().begin()->second->cancel_pid();
        key = proxy.clients().begin()->second->cancel_key();
    }  // the io_context goes: the suspended frames are destroyed without finish()
    EXPECT_EQ(proxy.client_count(), 0u);
    // Before the fix: heap-use-after-free under ASan (the registry's pointer to the freed session).
    EXPECT_FALSE(proxy.forward_cancel(pid, key));
}

TEST(ClientRegistry, SessionRegistersWhenMadeAndLeavesWhenDestroyedWithoutRunning) {
    asio::io_context io;
    Proxy proxy(io, test_config());
    LoopbackPair pair(io);
    auto session = std::make_shared<ClientSession>(proxy, std::move(pair.accepted), 1);
    EXPECT_EQ(proxy.client_count(), 1u);
    EXPECT_NE(session->cancel_pid(), 0u);
    session.reset();
    EXPECT_EQ(proxy.client_count(), 0u);
}

// poolguard's main() destroys the Proxy before the io_context, whose destruction then frees the sessions
// still suspended (SIGQUIT with connected clients): their destructors must not reach the dead Proxy.
TEST(ClientRegistry, SessionOutlivingItsProxyDoesNotTouchIt) {
    asio::io_context io;
    auto proxy = std::make_unique<Proxy>(io, test_config());
    LoopbackPair pair(io);
    auto session = std::make_shared<ClientSession>(*proxy, std::move(pair.accepted), 1);
    asio::co_spawn(io, session->run(), asio::detached);
    io.run_for(100ms);
    session.reset();
    ASSERT_EQ(proxy->client_count(), 1u);
    proxy.reset();  // then `io` is destroyed with the session's frames (ASan reports any use of the Proxy)
}

}  // namespace
}  // namespace poolguard::session
