// Owns the Proxy's side of the listener hand-off (so_reuseport rolling restart): every instance listens on an
// abstract unix socket named after its port and pid; an instance shutting down gives its TCP listening
// sockets to a sibling instead of closing them, so the connections queued on them are served, not reset. The
// socket-level helpers are in net/listener_handoff.{h,cpp}.
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <span>
#include <sstream>

#include "net/listener_handoff.h"
#include "net/socket.h"
#include "session/proxy.h"

namespace poolguard::session {

namespace {
using LocalSocket = asio::local::stream_protocol::socket;
constexpr auto kHandoffTimeout = std::chrono::seconds(2);

asio::local::stream_protocol::endpoint handoff_endpoint(int port, pid_t pid) {
    std::string name(1, '\0');
    name += net::handoff::socket_name(port, pid);
    return asio::local::stream_protocol::endpoint(name);
}

// Closes the socket if the hand-off is not over by then: no peer can hold one forever.
std::shared_ptr<asio::steady_timer> close_on_timeout(const std::shared_ptr<LocalSocket>& socket) {
    auto timer = std::make_shared<asio::steady_timer>(socket->get_executor(), kHandoffTimeout);
    timer->async_wait([socket, timer](std::error_code ec) {
        if (ec) return;
        std::error_code ignored;
        socket->close(ignored);
    });
    return timer;
}
}  // namespace

void Proxy::open_handoff_listener() {
    auto acceptor = std::make_unique<asio::local::stream_protocol::acceptor>(io_);
    std::error_code ec;
    acceptor->open(asio::local::stream_protocol(), ec);
    if (!ec) acceptor->bind(handoff_endpoint(config_->listen_port, ::getpid()), ec);
    if (!ec) acceptor->listen(8, ec);
    if (ec) {
        spdlog::warn(
            "so_reuseport: could not open the listener hand-off socket ({}); a rolling restart may "
            "reset connections queued on this instance's listener when it stops",
            ec.message());
        return;
    }
    handoff_acceptor_ = std::move(acceptor);
    asio::co_spawn(io_, handoff_accept_loop(), net::LogIfThrown{"listener hand-off"});
}

std::vector<pid_t> Proxy::find_handoff_siblings() const {
    std::ifstream in("/proc/net/unix");
    std::stringstream text;
    text << in.rdbuf();
    return net::handoff::sibling_pids(text.str(), config_->listen_port, ::getpid());
}

asio::awaitable<void> Proxy::handoff_accept_loop() {
    while (!shutting_down_ && handoff_acceptor_ && handoff_acceptor_->is_open()) {
        auto [ec, socket] = co_await handoff_acceptor_->async_accept(net::use_nothrow);
        if (ec) {
            if (ec == asio::error::operation_aborted || shutting_down_) co_return;
            spdlog::warn("listener hand-off: accept failed: {}", ec.message());
            continue;
        }
        asio::co_spawn(io_, take_over_listeners(std::move(socket)), net::LogIfThrown{"listener hand-off"});
    }
}

asio::awaitable<void> Proxy::take_over_listeners(LocalSocket accepted) {
    auto socket = std::make_shared<LocalSocket>(std::move(accepted));
    // Only an instance running as our own user may give us listeners (SO_REUSEPORT demands the same uid).
    const auto peer = net::handoff::peer_credentials(socket->native_handle());
    if (!peer || peer->uid != ::geteuid()) {
        spdlog::warn("listener hand-off: refused a connection from uid {}", peer ? int(peer->uid) : -1);
        co_return;
    }
    auto deadline = close_on_timeout(socket);
    auto [wait_ec] = co_await socket->async_wait(asio::socket_base::wait_read, net::use_nothrow);
    deadline->cancel();
    std::error_code ec = wait_ec;
    std::vector<int> fds;
    if (!ec && socket->is_open()) fds = net::handoff::receive_fds(socket->native_handle(), 64, ec);
    if (ec) {
        spdlog::warn("listener hand-off from pid {} failed: {}", peer->pid, ec.message());
        co_return;
    }
    bool usable = !shutting_down_;
    for (int fd : fds)
        usable = usable && net::handoff::listening_tcp_port(fd) == config_->listen_port;
    if (!usable) {
        for (int fd : fds)
            ::close(fd);  // the sender still holds them: nothing is reset
        const char no = 'N';
        (void)::send(socket->native_handle(), &no, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        spdlog::info("listener hand-off from pid {} declined ({})", peer->pid,
                     shutting_down_
                         ? "shutting down"
                         : "not listening sockets of port " + std::to_string(config_->listen_port));
        co_return;
    }
    // All or nothing: until we answer yes the sender holds every socket, so giving up here resets nothing.
    std::vector<std::unique_ptr<net::Acceptor>> taken;
    for (int fd : fds) {
        sockaddr_storage addr{};
        socklen_t len = sizeof addr;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
        auto acceptor = std::make_unique<net::Acceptor>(io_);
        std::error_code assign_ec;
        acceptor->assign(asio::generic::stream_protocol(addr.ss_family, IPPROTO_TCP), fd, assign_ec);
        if (assign_ec) {
            spdlog::error("listener hand-off from pid {}: could not use descriptor {}: {}; declined",
                          peer->pid, fd, assign_ec.message());
            ::close(fd);
            for (int rest : std::span(fds).subspan(taken.size() + 1))
                ::close(rest);
            const char no = 'N';
            (void)::send(socket->native_handle(), &no, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
            co_return;  // `taken` closes our copies of the ones already assigned
        }
        taken.push_back(std::move(acceptor));
    }
    const char yes = 'Y';
    (void)::send(socket->native_handle(), &yes, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    spdlog::info("took over {} listening socket(s) of port {} from pid {}", taken.size(),
                 config_->listen_port, peer->pid);
    for (auto& acceptor : taken) {
        asio::co_spawn(io_, accept_loop(*acceptor), net::LogIfThrown{"accept loop"});
        acceptors_.push_back(std::move(acceptor));
    }
}

asio::awaitable<void> Proxy::hand_off_listeners(std::vector<pid_t> siblings) {
    // Stop accepting on the TCP listeners; what queues from now on is the taker's to accept.
    std::vector<net::Acceptor*> tcp;
    std::vector<int> fds;
    for (auto& acceptor : acceptors_) {
        if (!acceptor->is_open() || !net::handoff::listening_tcp_port(acceptor->native_handle())) continue;
        std::error_code ignored;
        acceptor->cancel(ignored);
        tcp.push_back(acceptor.get());
        fds.push_back(acceptor->native_handle());
    }
    bool handed = false;
    for (pid_t sibling : siblings) {
        if (fds.empty()) break;
        if (co_await hand_off_to(sibling, fds)) {
            handed = true;
            for (auto* acceptor : tcp) {
                // release() takes the descriptor out of our epoll set; the taker's copy keeps the socket
                // and its queue alive.
                std::error_code ignored;
                ::close(acceptor->release(ignored));
            }
            spdlog::info("handed {} listening socket(s) of port {} to pid {}", fds.size(),
                         config_->listen_port, sibling);
            break;
        }
    }
    if (!handed && !fds.empty())
        spdlog::warn("no other poolguard took over the listeners of port {}; closing them",
                     config_->listen_port);
    drain_and_close_listeners();  // the unix socket listener, and the TCP ones if nobody took them
    handoff_pending_ = false;
}

asio::awaitable<bool> Proxy::hand_off_to(pid_t sibling, const std::vector<int>& fds) {
    auto socket = std::make_shared<LocalSocket>(io_);
    const auto endpoint = handoff_endpoint(config_->listen_port, sibling);
    auto [ec] = co_await socket->async_connect(endpoint, net::use_nothrow);
    if (ec) {
        spdlog::debug("listener hand-off: pid {} not reachable: {}", sibling, ec.message());
        co_return false;
    }
    const auto peer = net::handoff::peer_credentials(socket->native_handle());
    if (!peer || peer->uid != ::geteuid() || peer->pid != sibling) {
        spdlog::warn("listener hand-off: the socket of pid {} belongs to someone else; not handing off",
                     sibling);
        co_return false;
    }
    std::error_code send_ec;
    if (!net::handoff::send_fds(socket->native_handle(), fds, send_ec)) {
        spdlog::warn("listener hand-off to pid {} failed: {}", sibling, send_ec.message());
        co_return false;
    }
    auto deadline = close_on_timeout(socket);
    char answer = 0;
    auto [read_ec, n] = co_await socket->async_read_some(asio::buffer(&answer, 1), net::use_nothrow);
    deadline->cancel();
    if (read_ec || n != 1 || answer != 'Y') {
        spdlog::info("listener hand-off: pid {} declined ({})", sibling,
                     read_ec ? read_ec.message() : std::string("said no"));
        co_return false;
    }
    co_return true;
}

}  // namespace poolguard::session
