// Owns PeerCancels: cancel requests forwarded to the [peers] process whose client they are for (PgBouncer
// 1.19+ peering behind one TCP load balancer), the per-peer limit of requests in flight, SHOW PEER_POOLS.
#pragma once

#include <asio.hpp>
#include <chrono>
#include <map>
#include <string>

#include "config/config.h"
#include "session/cancel_key.h"

namespace poolguard::session {

// Where a cancel request goes when peering is on (peer_id > 0), decided from the key and the configuration
// alone: `forward` when the key names another peer; then `refusal` says why it cannot go (its TTL is spent,
// or [peers] has no such peer), else `peer`, `limit` and `timeout` are what PeerCancels::forward needs.
struct CancelRoute {
    bool forward = false;
    std::string refusal;
    config::PeerConfig peer;
    int limit = 0;
    std::chrono::milliseconds timeout{0};
};
CancelRoute route_cancel(const CancelKey& key, const config::Config& config);

class PeerCancels {
  public:
    // One peer's forwarding, for SHOW PEER_POOLS (a peer appears once a request was forwarded to it).
    struct Counters {
        int active = 0;   // sent to the peer, waiting for it to close the connection
        int waiting = 0;  // not sent yet: waiting for a slot (the peer's pool_size) or connecting
        int login = 0;    // connections to the peer being opened
    };

    // Forwards a cancel request for another peer's client: `peer` from [peers], `limit` requests in flight
    // to it at most (its pool_size, else default_pool_size), the whole delivery within `timeout`. The TTL
    // must be > 0 (checked by the caller); the peer gets the key with the TTL one lower. Returns an empty
    // string when the request was delivered, else why not (for the refusal log). Copies what it needs: no
    // reference to the configuration survives a suspension.
    asio::awaitable<std::string> forward(CancelKey key, config::PeerConfig peer, int limit,
                                         std::chrono::milliseconds timeout);

    const std::map<int, Counters>& counters() const { return counters_; }

  private:
    std::map<int, Counters> counters_;  // by peer id; entries live for the process (a handful of peers)
};

}  // namespace poolguard::session
