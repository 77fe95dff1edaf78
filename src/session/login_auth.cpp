// Owns how a login is authenticated: by auth_type, or under auth_type = hba by the first auth_hba_file rule
// that matches the connection (reject, trust, password methods, peer with auth_ident_file maps, cert), and
// the admin console's peer login as user pgbouncer.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "auth/hba.h"
#include "net/peer_credentials.h"
#include "protocol/pg/startup_options.h"
#include "session/client_session.h"
#include "session/proxy.h"
#include "session/session_helpers.h"

namespace poolguard::session {

namespace {
// PgBouncer 1.25's texts for these refusals (SQLSTATE 08P01, as it sends them).
constexpr const char* kRejected = "login rejected";
constexpr const char* kNoRule = "no authentication method is found";
constexpr const char* kPeerRejected = "unix socket login rejected";

std::optional<config::AuthType> password_type(auth::HbaMethod m) {
    switch (m) {
        case auth::HbaMethod::kTrust:
            return config::AuthType::kTrust;
        case auth::HbaMethod::kPassword:
            return config::AuthType::kPlain;
        case auth::HbaMethod::kMd5:
            return config::AuthType::kMd5;
        case auth::HbaMethod::kScramSha256:
            return config::AuthType::kScramSha256;
        default:
            return std::nullopt;
    }
}
}  // namespace

Status ClientSession::apply_startup_options(const std::vector<std::pair<std::string, std::string>>& params) {
    const auto& cfg = proxy_.config();
    for (const auto& [key, value] : params) {
        if (detail::lowercase(key) != "options") continue;
        auto settings = protocol::pg::parse_startup_options(value);
        if (!settings) return std::unexpected(settings.error());
        for (const auto& [name, setting] : *settings) {
            const auto lower = detail::lowercase(name);
            if (detail::tracked(lower, cfg)) {
                vars_.set(lower, setting);
            } else if (std::find(cfg.ignore_startup_parameters.begin(), cfg.ignore_startup_parameters.end(),
                                 lower) == cfg.ignore_startup_parameters.end()) {
                return fail("unsupported startup parameter in options: " + name,
                            sqlstate::kProtocolViolation);
            }
        }
    }
    return {};
}

bool ClientSession::admin_peer_login() const {
    if (user_ != "pgbouncer") return false;
    const auto uid = net::peer_uid(socket_.socket());
    return uid && *uid == static_cast<uint32_t>(::geteuid());
}

Status ClientSession::check_peer(const std::string& map, const auth::IdentMaps& ident) const {
    const auto uid = net::peer_uid(socket_.socket());
    if (!uid) return fail(kPeerRejected, sqlstate::kProtocolViolation);
    const auto os_user = net::os_user_name(*uid);
    const bool ok =
        os_user && (map.empty() ? *os_user == user_ : auth::ident_allows(ident, map, *os_user, user_));
    if (!ok) {
        spdlog::info("C-{}: peer authentication failed: OS user {} (uid {}) as {}{}", id_,
                     os_user.value_or("?"), *uid, user_, map.empty() ? std::string() : " with map " + map);
        return fail(kPeerRejected, sqlstate::kProtocolViolation);
    }
    return {};
}

asio::awaitable<Status> ClientSession::authenticate_login(const std::string& secret) {
    const std::shared_ptr<const config::Config> cfg_snapshot = proxy_.config_snapshot();  // across the awaits
    const config::Config& cfg = *cfg_snapshot;
    if (cfg.auth_type != config::AuthType::kHba) co_return co_await authenticate(secret, cfg.auth_type);

    const std::shared_ptr<const auth::AuthFiles> files = proxy_.auth_files();  // held across the awaits
    auth::HbaLogin login;
    login.unix_socket = net::peer_uid(socket_.socket()).has_value() || peer_ == "unix";
    login.tls = socket_.is_tls();  // hostssl / hostnossl
    if (!login.unix_socket) login.address = auth::parse_ip(peer_);
    login.database = database_;
    login.user = user_;
    login.physical_replication = replication_ == Replication::kPhysical;
    const auth::HbaRule* rule = auth::match_hba(files->hba, login);
    if (!rule) co_return fail(kNoRule, sqlstate::kProtocolViolation);
    if (cfg.verbose > 0)
        spdlog::debug("C-{}: {}/{} matched hba line {} ({})", id_, database_, user_, rule->line,
                      auth::to_string(rule->method));
    switch (rule->method) {
        case auth::HbaMethod::kReject:
            co_return fail(kRejected, sqlstate::kProtocolViolation);
        case auth::HbaMethod::kPeer:
            co_return check_peer(rule->map, files->ident);
        case auth::HbaMethod::kCert:
            co_return co_await authenticate(secret, config::AuthType::kCert);
        default:
            break;
    }
    co_return co_await authenticate(secret, *password_type(rule->method));
}

}  // namespace poolguard::session
