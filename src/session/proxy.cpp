// Owns Proxy: the running pooler — listeners, the registry of clients (cancel keys, max_client_conn),
// the auth_file secrets, the pools, configuration reload and graceful shutdown.
#include "session/proxy.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/logging.h"
#include "common/secure_random.h"
#include "net/systemd_sockets.h"
#include "protocol/pg/userlist.h"
#include "session/admin_service.h"
#include "session/cancel_key.h"
#include "session/client_session.h"
#include "session/refusal_log.h"

namespace poolguard::session {

Proxy::Proxy(asio::io_context& io, std::shared_ptr<const config::Config> config)
    : io_(io), config_(std::move(config)) {
    pools_ = std::make_unique<pool::PoolManager>(io_.get_executor(), config_);
    admin_ = std::make_unique<AdminService>(*this);
}

admin::AdminBackend& Proxy::admin_backend() {
    return *admin_;
}

void Proxy::set_paused(const std::string& database, bool paused) {
    if (paused)
        paused_.insert(database);
    else if (database.empty())
        paused_.clear();
    else
        paused_.erase(database);
    for (auto& [key, pool] : pools_->pools()) {
        if (!database.empty() && key.first != database) continue;
        if (database_paused(key.first))
            pool->pause();
        else
            pool->resume();
    }
    spdlog::info("{} {}", paused ? "PAUSE" : "RESUME", database.empty() ? "all databases" : database);
}

bool Proxy::database_paused(const std::string& database) const {
    return paused_.contains("") || paused_.contains(database);
}

void Proxy::set_disabled(const std::string& database, bool disabled) {
    if (disabled)
        disabled_.insert(database);
    else
        disabled_.erase(database);
}

void Proxy::on_pool_created(pool::Pool& pool) {
    if (database_paused(pool.database())) pool.pause();
}

namespace {
// tcp_keepalive and friends for every TCP socket accepted or connected from now on.
void apply_tcp_options(const config::Config& cfg) {
    net::set_tcp_options(net::TcpOptions{cfg.tcp_keepalive != 0, cfg.tcp_keepcnt, cfg.tcp_keepidle,
                                         cfg.tcp_keepintvl, cfg.tcp_user_timeout, cfg.tcp_socket_buffer});
}
}  // namespace

void Proxy::apply_config(std::shared_ptr<const config::Config> config) {
    apply_tcp_options(*config);
    // logfile, verbose and syslog* (RELOAD or SET) apply to the next log line.
    if (config->logfile != config_->logfile || config->verbose != config_->verbose ||
        config->syslog != config_->syslog || config->syslog_ident != config_->syslog_ident ||
        config->syslog_facility != config_->syslog_facility)
        setup_logging(config->logfile, config->verbose,
                      SyslogSettings{config->syslog, config->syslog_ident, config->syslog_facility});
    // New key, certificate and CA files (or TLS settings) apply to new connections from here on.
    if (auto tls = net::build_tls_contexts(*config); tls) {
        tls_ = std::move(*tls);
        pools_->set_server_tls(tls_.server);
    } else {
        spdlog::error("TLS settings not applied, keeping the old TLS contexts: {}", tls.error().message);
    }
    config_ = std::move(config);
    pools_->reload(config_);
}

Proxy::~Proxy() {
    // Sessions still alive (suspended in the io_context, destroyed after this) must not reach back here.
    for (auto& [pid, client] : clients_)
        client->detach_proxy();
    clients_.clear();
    remove_unix_socket();
}

void Proxy::remove_unix_socket() {
    if (unix_socket_path_.empty()) return;
    struct stat st {};
    // Only our own file: after a rolling restart the path belongs to the new process.
    if (::stat(unix_socket_path_.c_str(), &st) == 0 && st.st_ino == unix_socket_inode_)
        ::unlink(unix_socket_path_.c_str());
    unix_socket_path_.clear();
}

Status Proxy::load_auth_file(const config::Config& config) {
    if (config.auth_file.empty()) {
        secrets_.clear();
        return {};
    }
    auto users = protocol::pg::load_userlist(config.auth_file);
    if (!users) return std::unexpected(users.error());
    secrets_ = std::move(*users);
    return {};
}

Status Proxy::load_hba(const config::Config& config) {
    if (config.auth_type != config::AuthType::kHba) {
        auth_files_ = std::make_shared<const auth::AuthFiles>();
        return {};
    }
    auto files = auth::load_auth_files(config.auth_hba_file, config.auth_ident_file);
    if (!files) return std::unexpected(files.error());
    for (const auto& w : files->warnings)
        spdlog::warn("{}", w);
    auth_files_ = std::make_shared<const auth::AuthFiles>(std::move(*files));
    return {};
}

Status Proxy::start() {
    apply_tcp_options(*config_);
    if (auto st = load_auth_file(*config_); !st) return st;
    if (auto st = load_hba(*config_); !st) return st;
    auto tls = net::build_tls_contexts(*config_);
    if (!tls) return std::unexpected(tls.error());
    tls_ = std::move(*tls);
    pools_->set_server_tls(tls_.server);
    if (auto st = open_listeners(); !st) return st;
    // Databases with a forced user have a known pool before any client: min_pool_size can open it now.
    for (const auto& db : config_->databases) {
        if (db.user.empty() || db.name == "*") continue;
        auto secret = !db.password.empty() ? db.password : secret_for(db.user).value_or("");
        pools_->get_or_create(db, db.user, secret);
    }
    pools_->start_janitor();
    // Activated sockets belong to the service manager, which keeps them across restarts: no hand-off.
    if (config_->so_reuseport && !socket_activated_) open_handoff_listener();
    asio::co_spawn(io_, client_janitor(), net::LogIfThrown{"client janitor"});
    for (auto& acceptor : acceptors_)
        asio::co_spawn(io_, accept_loop(*acceptor), net::LogIfThrown{"accept loop"});
    return {};
}

Result<bool> Proxy::adopt_passed_listeners() {
    auto passed = net::systemd::passed_listeners();
    if (!passed) return std::unexpected(passed.error());
    if (passed->empty()) return false;
    const auto& cfg = *config_;
    // As PgBouncer 1.25.2: passed sockets replace the configured addresses altogether, so the socket unit
    // alone says where poolguard listens. Their Unix socket files are systemd's: never probed, unlinked,
    // chmodded or chowned here (unix_socket_mode/unix_socket_group are SocketMode=/SocketGroup= then).
    if (!cfg.listen_addr.empty()) spdlog::warn("sockets passed from service manager, listen_addr ignored");
    if (!cfg.unix_socket_dir.empty() && cfg.unix_socket_dir != "/tmp")
        spdlog::warn("sockets passed from service manager, unix_socket_dir ignored");
    for (const auto& l : *passed) {
        auto acceptor = std::make_unique<net::Acceptor>(io_);
        std::error_code ec;
        acceptor->assign(asio::generic::stream_protocol(l.family, l.family == AF_UNIX ? 0 : IPPROTO_TCP),
                         l.fd, ec);
        if (ec)
            return fail("could not use socket " + l.description + " passed from service manager (fd " +
                        std::to_string(l.fd) + "): " + ec.message());
        spdlog::info("listening on {} (socket passed from service manager, fd {})", l.description, l.fd);
        acceptors_.push_back(std::move(acceptor));
    }
    socket_activated_ = true;
    return true;
}

Status Proxy::open_listeners() {
    const auto& cfg = *config_;
    auto adopted = adopt_passed_listeners();
    if (!adopted) return std::unexpected(adopted.error());
    if (*adopted) return {};
    auto open = [&](const asio::generic::stream_protocol::endpoint& ep, bool tcp,
                    const std::string& what) -> Status {
        auto acceptor = std::make_unique<net::Acceptor>(io_);
        std::error_code ec;
        acceptor->open(ep.protocol(), ec);
        if (!ec && tcp) {
            int one = 1;
            ::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (cfg.so_reuseport)
                ::setsockopt(acceptor->native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
            if (ep.protocol().family() == AF_INET6)
                ::setsockopt(acceptor->native_handle(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
        }
        if (!ec) acceptor->bind(ep, ec);
        if (!ec) acceptor->listen(cfg.listen_backlog, ec);
        if (ec) return fail("could not listen on " + what + ": " + ec.message());
        spdlog::info("listening on {}", what);
        acceptors_.push_back(std::move(acceptor));
        return {};
    };
    for (const auto& addr : cfg.listen_addr) {
        std::vector<std::string> hosts;
        if (addr == "*") {
            hosts = {"0.0.0.0", "::"};
        } else {
            hosts = {addr};
        }
        for (const auto& host : hosts) {
            std::error_code ec;
            auto ip = asio::ip::make_address(host, ec);
            if (ec) {
                asio::ip::tcp::resolver resolver(io_);
                auto results = resolver.resolve(host, std::to_string(cfg.listen_port), ec);
                if (ec || results.empty()) return fail("could not resolve listen_addr " + host);
                ip = results.begin()->endpoint().address();
            }
            asio::ip::tcp::endpoint tcp_ep(ip, static_cast<unsigned short>(cfg.listen_port));
            auto st = open(asio::generic::stream_protocol::endpoint(tcp_ep), true,
                           host + ":" + std::to_string(cfg.listen_port));
            if (!st) {
                if (addr == "*" && host == "::") {
                    spdlog::warn("{}", st.error().message);  // no IPv6 on this host is fine for '*'
                    continue;
                }
                return st;
            }
        }
    }
    if (!cfg.unix_socket_dir.empty()) {
        const auto path = cfg.unix_socket_dir + "/.s.PGSQL." + std::to_string(cfg.listen_port);
        // A stale socket file from a crashed run would block bind; a live one means another pooler owns it.
        {
            asio::local::stream_protocol::socket probe(io_);
            std::error_code ec;
            probe.connect(asio::local::stream_protocol::endpoint(path), ec);
            if (!ec && !cfg.so_reuseport)
                return fail("unix socket " + path + " is in use by another process");
            // so_reuseport (rolling restart): the new process takes the path over; the old one keeps its
            // already-accepted clients and, thanks to the inode check, does not remove our file on exit.
            ::unlink(path.c_str());
        }
        auto st = open(asio::generic::stream_protocol::endpoint(asio::local::stream_protocol::endpoint(path)),
                       false, "unix:" + path);
        if (!st) return st;
        ::chmod(path.c_str(), static_cast<mode_t>(cfg.unix_socket_mode));
        if (!cfg.unix_socket_group.empty()) {
            // As PgBouncer: the socket file's group, so that its members may connect under a 0770 mode.
            const struct group* gr = ::getgrnam(cfg.unix_socket_group.c_str());
            if (gr == nullptr) {
                ::unlink(path.c_str());
                return fail("unix_socket_group: no such group: " + cfg.unix_socket_group);
            }
            if (::chown(path.c_str(), static_cast<uid_t>(-1), gr->gr_gid) != 0) {
                const int err = errno;
                ::unlink(path.c_str());
                return fail("unix_socket_group: cannot set group " + cfg.unix_socket_group + " on " + path +
                            ": " + std::strerror(err));
            }
        }
        unix_socket_path_ = path;
        struct stat file_info {};
        if (::stat(path.c_str(), &file_info) == 0) unix_socket_inode_ = file_info.st_ino;
    }
    if (acceptors_.empty())
        return fail("no listeners configured (listen_addr and unix_socket_dir are both empty)");
    return {};
}

namespace {
bool is_unix_listener(const net::Acceptor& acceptor) {
    std::error_code ec;
    const auto ep = acceptor.local_endpoint(ec);
    return !ec && ep.protocol().family() == AF_UNIX;
}
}  // namespace

asio::awaitable<void> Proxy::accept_loop(net::Acceptor& acceptor) {
    // TCP listeners stop at a shutdown (closed, or cancelled for a hand-off); the Unix one keeps accepting
    // admin console logins until the process stops.
    const bool unix_listener = is_unix_listener(acceptor);
    while (!stopped_ && (!shutting_down_ || unix_listener)) {
        auto [ec, socket] = co_await acceptor.async_accept(net::use_nothrow);
        if (ec) {
            if (ec == asio::error::operation_aborted || stopped_ || !acceptor.is_open()) co_return;
            if (shutting_down_ && !unix_listener) co_return;
            // Out of file descriptors and similar: back off instead of spinning, keep serving.
            spdlog::error("accept failed: {}", ec.message());
            asio::steady_timer t(io_, std::chrono::milliseconds(100));
            co_await t.async_wait(net::use_nothrow);
            continue;
        }
        start_client(std::move(socket), shutting_down_ && unix_listener);
    }
}

std::vector<Proxy::ListenerInfo> Proxy::listeners() const {
    std::vector<ListenerInfo> out;
    for (const auto& acceptor : acceptors_) {
        if (!acceptor->is_open()) continue;
        ListenerInfo l;
        l.fd = const_cast<net::Acceptor&>(*acceptor).native_handle();
        l.port = config_->listen_port;
        if (is_unix_listener(*acceptor)) {
            l.addr = "unix";
        } else {
            sockaddr_storage addr{};
            socklen_t len = sizeof addr;
            char host[INET6_ADDRSTRLEN] = {};
            if (::getsockname(l.fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
                if (addr.ss_family == AF_INET)
                    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&addr)->sin_addr, host, sizeof host);
                else if (addr.ss_family == AF_INET6)
                    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&addr)->sin6_addr, host,
                                sizeof host);
            }
            l.addr = host;
            if (addr.ss_family == AF_INET) l.port = ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
            if (addr.ss_family == AF_INET6) l.port = ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
        }
        out.push_back(std::move(l));
    }
    return out;
}

void Proxy::start_client(net::Socket socket, bool admin_only) {
    net::tune_socket(socket);
    auto client = std::make_shared<ClientSession>(*this, std::move(socket), ++next_client_id_);
    if (admin_only) client->restrict_to_admin_console();
    asio::co_spawn(io_, client->run(), net::LogIfThrown{"client session"});
}

void Proxy::register_client(ClientSession* client, uint32_t& pid, uint32_t& key) {
    // peer_id > 0: the key carries it, so a peer that receives this client's cancel request forwards it here.
    const int peer_id = config().peer_id;
    CancelKey k;
    do {
        std::array<uint32_t, 2> r{};
        if (!secure_random(std::span<uint8_t>(reinterpret_cast<uint8_t*>(r.data()), sizeof r)))
            r = {static_cast<uint32_t>(rng_()), static_cast<uint32_t>(rng_())};
        k = CancelKey::make(r[0], r[1], peer_id);
    } while (k.pid == 0 || clients_.contains(k.packed()));
    pid = k.pid;
    key = k.key;
    clients_.emplace(k.packed(), client);
}

void Proxy::unregister_client(ClientSession* client) {
    auto it = clients_.find(CancelKey{client->cancel_pid(), client->cancel_key()}.packed());
    if (it != clients_.end() && it->second == client) clients_.erase(it);
}

bool Proxy::forward_cancel(uint32_t pid, uint32_t key) {
    const CancelKey k = CancelKey{pid, key}.stored_form(config().peer_id > 0);
    auto it = clients_.find(k.packed());
    // Only the client's own key cancels, and only while that client holds a server: never someone else's
    // query.
    if (it == clients_.end()) return false;
    it->second->cancel_running_query();
    return true;
}

std::optional<std::string> Proxy::secret_for(const std::string& user) const {
    auto it = secrets_.find(user);
    if (it == secrets_.end()) return std::nullopt;
    return it->second;
}

const protocol::pg::ScramSecret& Proxy::scram_secret_for_plain(const std::string& user,
                                                               const std::string& password) {
    auto it = scram_cache_.find(user);
    const int iterations = config_->scram_iterations;  // a reload may change it
    if (it == scram_cache_.end() || it->second.first != password ||
        it->second.second.iterations != iterations) {
        it = scram_cache_
                 .insert_or_assign(user, std::pair{password, protocol::pg::scram_secret_for_plain_password(
                                                                 password, iterations)})
                 .first;
    }
    return it->second.second;
}

Status Proxy::reload() {
    if (hooks_.reloading) hooks_.reloading();
    Status st = reload_config();
    if (hooks_.reloaded) hooks_.reloaded(st);
    return st;
}

Status Proxy::reload_config() {
    auto loaded = config::load_config(config_->file);
    if (!loaded) {
        spdlog::error("reload failed, keeping the old configuration: {}", loaded.error().message);
        return fail("RELOAD failed, the old configuration stays in force: " + loaded.error().message,
                    loaded.error().sqlstate.empty() ? "F0000" : loaded.error().sqlstate);
    }
    for (const auto& w : loaded->warnings)
        spdlog::warn("{}:{}: {}", w.file, w.line, w.message);
    auto fresh = std::make_shared<const config::Config>(std::move(loaded->config));
    // Unreadable or mismatched key/certificate files refuse the reload as a bad setting would.
    if (auto tls = net::build_tls_contexts(*fresh); !tls) {
        spdlog::error("reload failed, keeping the old configuration: {}", tls.error().message);
        return fail("RELOAD failed, the old configuration stays in force: " + tls.error().message, "F0000");
    }
    if (fresh->listen_port != config_->listen_port || fresh->listen_addr != config_->listen_addr ||
        fresh->unix_socket_dir != config_->unix_socket_dir)
        spdlog::warn(
            "listen_addr/listen_port/unix_socket_dir changes need a restart; keeping the old listeners");
    if (auto st = load_auth_file(*fresh); !st) {
        spdlog::error("reload: could not read auth_file, keeping the old one: {}", st.error().message);
    }
    if (auto st = load_hba(*fresh); !st)
        spdlog::error("reload: could not read auth_hba_file, keeping the old rules: {}", st.error().message);
    apply_config(fresh);
    spdlog::info("configuration reloaded from {}", config_->file);
    return {};
}

void Proxy::begin_shutdown(ShutdownMode mode) {
    if (stopped_) return;
    if (shutting_down_) {
        spdlog::info("shutdown already in progress: exiting now");
        shutdown_now();
        return;
    }
    shutting_down_ = true;
    shutdown_mode_ = mode;
    notify_stopping(mode == ShutdownMode::kWaitForServers
                        ? "shutting down: waiting for transactions to finish"
                        : "shutting down: waiting for clients to disconnect");
    if (mode == ShutdownMode::kWaitForServers) {
        pools_->set_shutting_down();
        spdlog::info(
            "shutting down: no new connections; waiting for {} clients' transactions to finish (safe "
            "shutdown)",
            clients_.size());
    } else {
        spdlog::info("shutting down: no new connections; waiting for {} clients to disconnect",
                     clients_.size());
    }
    // Nobody may hand us listeners any more; ours go to a sibling instance if there is one (so_reuseport).
    if (handoff_acceptor_) {
        std::error_code ignored;
        handoff_acceptor_->close(ignored);
    }
    std::vector<pid_t> siblings;
    if (config_->so_reuseport && !socket_activated_) siblings = find_handoff_siblings();
    if (!siblings.empty()) {
        handoff_pending_ = true;
        asio::co_spawn(io_, hand_off_listeners(std::move(siblings)), net::LogIfThrown{"listener hand-off"});
    } else {
        drain_and_close_listeners();
    }
    asio::co_spawn(io_, shutdown_watch(), net::LogIfThrown{"shutdown watch"});
}

void Proxy::drain_and_close_listeners() {
    for (auto& acceptor : acceptors_) {
        // The Unix socket stays open: admin consoles may still log in (only they; see start_client).
        if (!acceptor->is_open() || is_unix_listener(*acceptor)) continue;
        // Connections already queued on the listener would be reset by close(): take them in first. Not
        // on a socket from the service manager: it stays open there, and its queue is the next instance's.
        std::error_code ec;
        acceptor->non_blocking(true, ec);
        while (!ec && !socket_activated_) {
            net::Socket socket(io_);
            acceptor->accept(socket, ec);
            if (ec) break;
            start_client(std::move(socket));
        }
        std::error_code ignored;
        acceptor->close(ignored);
    }
}

asio::awaitable<void> Proxy::shutdown_watch() {
    asio::steady_timer t(io_);
    while (!stopped_) {
        bool waiting_for_someone = handoff_pending_;
        if (shutdown_mode_ == ShutdownMode::kWaitForServers) {
            // Each client goes at its next transaction boundary; admin consoles stay until the end.
            const auto now = std::chrono::steady_clock::now();
            std::vector<ClientSession*> snapshot;
            for (auto& [pid, c] : clients_)
                if (!c->is_admin()) snapshot.push_back(c);
            for (auto* c : snapshot)
                c->on_shutdown(now);
            for (auto& [pid, c] : clients_)
                waiting_for_someone = waiting_for_someone || !c->is_admin();
        } else {
            waiting_for_someone = waiting_for_someone || !clients_.empty();
        }
        if (!waiting_for_someone) break;
        t.expires_after(std::chrono::milliseconds(50));
        co_await t.async_wait(net::use_nothrow);
    }
    if (stopped_) co_return;
    spdlog::info(shutdown_mode_ == ShutdownMode::kWaitForServers ? "all transactions finished; exiting"
                                                                 : "all clients disconnected; exiting");
    shutdown_now();
}

asio::awaitable<void> Proxy::client_janitor() {
    asio::steady_timer t(io_);
    while (!stopped_) {
        t.expires_after(std::chrono::milliseconds(100));
        co_await t.async_wait(net::use_nothrow);
        const auto now = std::chrono::steady_clock::now();
        for (auto& [pid, c] : clients_)
            c->check_timeouts(now);
        flush_refusal_summary();  // the last second of a refusal flood (issue 15)
        if (now - last_stats_roll_ >= std::chrono::seconds(std::max(config_->stats_period, 1))) {
            admin_->roll_stats_period();
            last_stats_roll_ = now;
        }
        if (now - last_autodb_check_ >= std::chrono::seconds(1)) {
            expire_autodb_pools(now);
            last_autodb_check_ = now;
        }
    }
}

void Proxy::notify_stopping(std::string_view what) {
    if (stopping_notified_) return;
    stopping_notified_ = true;
    if (hooks_.stopping) hooks_.stopping(what);
}

void Proxy::shutdown_now() {
    if (stopped_) return;
    notify_stopping("shutting down now");
    stopped_ = true;
    shutting_down_ = true;
    if (handoff_acceptor_) {
        std::error_code ignored;
        handoff_acceptor_->close(ignored);
    }
    for (auto& acceptor : acceptors_) {
        std::error_code ignored;
        acceptor->close(ignored);
    }
    pools_->stop();
    for (auto& [key, pool] : pools_->pools())
        pool->close_all("poolguard is stopping");
    remove_unix_socket();
    io_.stop();
}

}  // namespace poolguard::session
