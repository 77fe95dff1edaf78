// Owns how a replication connection (startup parameter replication = true | database) gets its server: a
// pool of its own per (database, user, replication, startup parameters), in session mode, whose servers are
// opened with the client's startup parameters and closed when the client leaves (pool::PoolManager).
#include <array>

#include "pool/pool_manager.h"
#include "session/client_session.h"
#include "session/proxy.h"

namespace poolguard::session {

std::optional<ClientSession::Replication> ClientSession::parse_replication(std::string_view value) {
    std::string v(value);
    for (auto& c : v)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const char* t : {"true", "on", "yes", "1"})
        if (v == t) return Replication::kPhysical;
    for (const char* f : {"false", "off", "no", "0"})
        if (v == f) return Replication::kNone;
    if (v == "database") return Replication::kLogical;
    return std::nullopt;
}

pool::Pool& ClientSession::replication_pool(const config::DatabaseConfig& db, const std::string& secret) {
    // The client's own session parameters go into the server's startup packet: a walsender takes no SET.
    std::vector<std::pair<std::string, std::string>> params;
    for (size_t i = 0; i < kTrackedCount; ++i)
        if (const std::string* v = vars_.at(i)) params.emplace_back(kTrackedParams[i].canonical, *v);
    const std::string server_user = db.user.empty() ? user_ : db.user;
    const std::string server_secret =
        db.user.empty() ? secret
                        : (!db.password.empty() ? db.password : proxy_.secret_for(db.user).value_or(""));
    // With a SCRAM verifier as secret, the keys from this client's own exchange log poolguard in.
    std::optional<pool::ScramPassThrough> keys;
    if (db.user.empty() && scram_client_key_)
        if (auto parsed = protocol::pg::parse_scram_secret(secret))
            keys = pool::ScramPassThrough{*scram_client_key_, parsed->server_key};
    auto& pool = proxy_.pools().get_replication_pool(
        db, server_user, server_secret, replication_ == Replication::kPhysical ? "true" : "database", params,
        keys);
    proxy_.on_pool_created(pool);
    return pool;
}

}  // namespace poolguard::session
