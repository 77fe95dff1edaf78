// Owns autodb_idle_timeout (PgBouncer 1.25): pools made from the "*" database entry with no client and no
// server connection for that long are dropped and their statistics forgotten.
#include <spdlog/spdlog.h>

#include <set>

#include "session/client_session.h"
#include "session/proxy.h"

namespace poolguard::session {

namespace {
bool configured_by_name(const config::Config& cfg, const std::string& database) {
    for (const auto& db : cfg.databases)
        if (db.name == database) return true;
    return false;
}
}  // namespace

void Proxy::expire_autodb_pools(std::chrono::steady_clock::time_point now) {
    const auto timeout = config_->autodb_idle_timeout;
    if (timeout.count() <= 0 || stopped_) {
        autodb_unused_since_.clear();
        return;
    }
    // A client that named a database may hold its pool (from login on): such pools stay.
    std::set<std::string> in_use;
    for (const auto& [pid, c] : clients_)
        if (!c->database().empty()) in_use.insert(c->database());
    std::vector<std::pair<std::string, std::string>> expired;
    for (const auto& [key, pool] : pools_->pools()) {
        if (configured_by_name(*config_, key.first)) continue;  // only pools made from "*"
        // As PgBouncer 1.25.2 (observed): a pool with servers, even idle ones, is in use; it becomes unused
        // once server_idle_timeout (or server_lifetime) has closed them.
        const bool busy = in_use.contains(key.first) || pool->has_waiters() || pool->server_count() > 0;
        if (busy) {
            autodb_unused_since_.erase(key);
            continue;
        }
        auto [it, fresh] = autodb_unused_since_.try_emplace(key, now);
        if (!fresh && now - it->second >= timeout) expired.push_back(key);
    }
    for (const auto& key : expired) {
        if (!pools_->drop_pool(key, "autodb_idle_timeout")) continue;  // servers still closing: next time
        autodb_unused_since_.erase(key);
        spdlog::info("{}/{}: pool of the auto-database dropped after autodb_idle_timeout", key.first,
                     key.second);
    }
    // Pools that no longer exist are forgotten.
    std::erase_if(autodb_unused_since_,
                  [&](const auto& entry) { return !pools_->pools().contains(entry.first); });
}

}  // namespace poolguard::session
