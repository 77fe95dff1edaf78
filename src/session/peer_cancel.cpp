// Owns PeerCancels (see peer_cancel.h): forwarding a cancel request to the peer that holds its client.
#include "session/peer_cancel.h"

#include <algorithm>
#include <memory>

#include "net/socket.h"
#include "protocol/pg/messages.h"

namespace poolguard::session {

namespace pg = protocol::pg;

CancelRoute route_cancel(const CancelKey& key, const config::Config& config) {
    CancelRoute r;
    if (config.peer_id <= 0 || key.peer_id() == config.peer_id) return r;  // ours: look up the client here
    r.forward = true;
    const int id = key.peer_id();
    if (key.ttl() == 0) {
        r.refusal = "cancel request for peer " + std::to_string(id) +
                    " not forwarded: it was already forwarded 3 times (its TTL is spent)";
        return r;
    }
    auto it = std::find_if(config.peers.begin(), config.peers.end(),
                           [&](const config::PeerConfig& p) { return p.peer_id == id; });
    if (it == config.peers.end()) {
        r.refusal =
            "cancel request for peer " + std::to_string(id) + " not forwarded: no such peer in [peers]";
        return r;
    }
    r.peer = *it;
    r.limit = it->pool_size.value_or(config.default_pool_size);
    r.timeout = config::cancel_budget(config);  // the same budget as a cancel to a server
    return r;
}

asio::awaitable<std::string> PeerCancels::forward(CancelKey key, config::PeerConfig peer, int limit,
                                                  std::chrono::milliseconds timeout) {
    auto ex = co_await asio::this_coro::executor;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const int id = peer.peer_id;
    ++counters_[id].waiting;
    // The peer's pool_size bounds the requests in flight to it; a burst waits its turn (cancels often come
    // in bursts when the database is slow), within the same deadline.
    asio::steady_timer turn(ex);
    while (counters_[id].active + counters_[id].login >= std::max(1, limit)) {
        if (std::chrono::steady_clock::now() >= deadline) {
            --counters_[id].waiting;
            co_return "peer " + std::to_string(id) + " has " + std::to_string(limit) +
                " cancel requests in flight (pool_size) until the deadline";
        }
        turn.expires_after(std::chrono::milliseconds(5));
        co_await turn.async_wait(net::use_nothrow);
    }
    ++counters_[id].login;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    auto sock =
        co_await net::connect_to_server(peer.host, peer.port, std::max(left, std::chrono::milliseconds(1)));
    --counters_[id].login;
    --counters_[id].waiting;
    if (!sock) co_return "could not connect to peer " + std::to_string(id) + ": " + sock.error().message;

    ++counters_[id].active;
    auto s = std::make_shared<net::Socket>(std::move(*sock));
    asio::steady_timer timer(ex);
    timer.expires_at(deadline);
    auto timed_out = std::make_shared<bool>(false);
    timer.async_wait([s, timed_out](std::error_code ec) {
        if (ec) return;
        *timed_out = true;
        std::error_code ignored;
        s->close(ignored);
    });
    const CancelKey onward = key.forwarded();
    std::string request;
    pg::append_cancel_request(request, onward.pid, onward.key);
    std::string error;
    auto [wec, wn] = co_await asio::async_write(*s, asio::buffer(request), net::use_nothrow);
    if (wec) {
        error = "could not send the cancel request to peer " + std::to_string(id) + ": " + wec.message();
    } else {
        // The peer closes the connection once it has passed the request on: wait for that, so the request
        // counts as in flight until it was delivered.
        char sink[16];
        co_await s->async_read_some(asio::buffer(sink), net::use_nothrow);
        if (*timed_out)
            error = "peer " + std::to_string(id) + " did not take the cancel request within " +
                    std::to_string(timeout.count()) + " ms";
    }
    timer.cancel();
    --counters_[id].active;
    co_return error;
}

}  // namespace poolguard::session
