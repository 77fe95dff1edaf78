// Owns the responders' io-thread actions over the proxy's pools and clients (see proxy_actions.h).
#include "respond/proxy_actions.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "pool/pool.h"
#include "pool/pool_manager.h"
#include "pool/server_connection.h"
#include "session/client_session.h"
#include "session/proxy.h"

namespace poolguard::respond {

std::vector<PooledServer> collect_pooled_servers(session::Proxy& proxy) {
    std::vector<PooledServer> out;
    for (const auto& [key, pool] : proxy.pools().pools()) {
        const int servers = pool->server_count();
        const int min_size = pool->settings().min_pool_size;
        pool->for_each_server([&](const pool::ServerConnection& s) {
            if (s.backend_pid() == 0) return;
            out.push_back(PooledServer{static_cast<int64_t>(s.backend_pid()), key.first, key.second,
                                       s.state() == pool::ServerConnection::State::kIdle, servers, min_size,
                                       s.linked_client() ? s.linked_client_id() : 0});
        });
    }
    return out;
}

IoActionResult apply_on_io_thread(session::Proxy& proxy, const Decision& d) {
    if (d.type == ActionType::close_pool_server) {
        for (const auto& [key, pool] : proxy.pools().pools()) {
            if (key.first != d.database || key.second != d.user) continue;
            if (pool->server_count() <= pool->settings().min_pool_size)
                return {false, "pool is at min_pool_size now: nothing closed"};
            // The pool closes its least recently used idle server: the one idle longest.
            if (pool->evict_one_idle("kill_idle_after")) return {true, "closed an idle server"};
            return {false, "no idle server any more: nothing closed"};
        }
        return {false, "pool is gone: nothing closed"};
    }
    if (d.type == ActionType::end_client) {
        for (const auto& [cancel_pid, c] : proxy.clients()) {
            if (c->id() != d.client_id) continue;
            const auto& server = c->server();
            // Only while it still holds the backend the decision was about.
            if (!server || static_cast<int64_t>(server->backend_pid()) != d.pid)
                return {false, "client no longer holds that backend: left alone"};
            // The decision compared the database's view with a snapshot of the pools taken at another
            // moment: a server that was idle in the pool there may have been handed to this client since,
            // and a client may have sent its next query. Act only if the client is still idle on the
            // server for about as long as the rule's limit (0.5 s slack for the views' sampling times).
            if (server->busy_for_client()) return {false, "client is running a query now: left alone"};
            const auto now = std::chrono::steady_clock::now();
            const double ready_s = std::chrono::duration<double>(now - server->ready_since()).count();
            const double bound_s = std::chrono::duration<double>(now - c->bound_at()).count();
            if (std::min(ready_s, bound_s) + 0.5 < d.limit_s)
                return {false,
                        fmt::format(
                            "client idle on the server for only {:.1f} s now (limit {:.0f} s): left alone",
                            std::min(ready_s, bound_s), d.limit_s)};
            c->kill(d.client_message);
            return {true, "client ended"};
        }
        return {false, "client is gone"};
    }
    return {false, "not an io-thread action"};
}

}  // namespace poolguard::respond
