// Owns the socket type used for both TCP and Unix connections and helpers to open and tune them.
#include "net/socket.h"

#include <spdlog/spdlog.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <arpa/inet.h>

#include <atomic>
#include <cerrno>

namespace poolguard::net {

namespace {
// Read on every accept and connect, written on reload: one atomic per field (a torn read between two
// fields during a reload only mixes old and new settings for one socket).
std::atomic<bool> g_keepalive{true};
std::atomic<int> g_keepcnt{0}, g_keepidle{0}, g_keepintvl{0}, g_user_timeout{0}, g_socket_buffer{0};

void set_int_option(int fd, int level, int name, int value) {
    ::setsockopt(fd, level, name, &value, sizeof value);
}
}  // namespace

void set_tcp_options(const TcpOptions& options) {
    g_keepalive.store(options.keepalive, std::memory_order_relaxed);
    g_keepcnt.store(options.keepcnt, std::memory_order_relaxed);
    g_keepidle.store(options.keepidle, std::memory_order_relaxed);
    g_keepintvl.store(options.keepintvl, std::memory_order_relaxed);
    g_user_timeout.store(options.user_timeout_ms, std::memory_order_relaxed);
    g_socket_buffer.store(options.socket_buffer, std::memory_order_relaxed);
}

TcpOptions tcp_options() {
    return TcpOptions{
        g_keepalive.load(std::memory_order_relaxed),    g_keepcnt.load(std::memory_order_relaxed),
        g_keepidle.load(std::memory_order_relaxed),     g_keepintvl.load(std::memory_order_relaxed),
        g_user_timeout.load(std::memory_order_relaxed), g_socket_buffer.load(std::memory_order_relaxed)};
}

asio::awaitable<Result<Socket>> connect_to_server(const std::string& host, int port,
                                                  std::chrono::milliseconds timeout) {
    auto executor = co_await asio::this_coro::executor;
    Socket socket(executor);
    asio::steady_timer timer(executor);
    std::vector<asio::generic::stream_protocol::endpoint> endpoints;
    const std::string target = host.empty() ? std::string("/var/run/postgresql") : host;
    if (target.front() == '/') {
        endpoints.emplace_back(
            asio::local::stream_protocol::endpoint(target + "/.s.PGSQL." + std::to_string(port)));
    } else {
        asio::ip::tcp::resolver resolver(executor);
        const std::string service = std::to_string(port);
        auto [ec, results] = co_await resolver.async_resolve(target, service, use_nothrow);
        if (ec)
            co_return fail("could not resolve host \"" + target + "\": " + ec.message(),
                           sqlstate::kConnectionFailure);
        for (const auto& r : results)
            endpoints.emplace_back(r.endpoint());
    }
    std::error_code last;
    for (const auto& ep : endpoints) {
        socket = Socket(executor);
        bool timed_out = false;
        timer.expires_after(timeout);
        timer.async_wait([&](std::error_code ec) {
            if (!ec) {
                timed_out = true;
                std::error_code ignored;
                socket.cancel(ignored);
            }
        });
        auto [ec] = co_await socket.async_connect(ep, use_nothrow);
        timer.cancel();
        if (!ec) {
            tune_socket(socket);
            co_return std::move(socket);
        }
        last = timed_out ? asio::error::timed_out : ec;
    }
    co_return fail(
        "could not connect to server " + target + ":" + std::to_string(port) + ": " + last.message(),
        sqlstate::kConnectionFailure);
}

void tune_socket(Socket& socket) {
    std::error_code ec;
    const auto local = socket.local_endpoint(ec);
    if (ec) return;  // the peer is already gone; the session will notice on its first read
    const int family = local.protocol().family();
    if (family == AF_INET || family == AF_INET6) {
        const int fd = socket.native_handle();
        const TcpOptions o = tcp_options();
        set_int_option(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        // As PgBouncer: the keepalive knobs apply only with tcp_keepalive on; 0 leaves the OS default.
        set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, o.keepalive ? 1 : 0);
        if (o.keepalive) {
            if (o.keepcnt > 0) set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, o.keepcnt);
            if (o.keepidle > 0) set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, o.keepidle);
            if (o.keepintvl > 0) set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, o.keepintvl);
        }
        if (o.user_timeout_ms > 0) set_int_option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, o.user_timeout_ms);
        if (o.socket_buffer > 0) {
            set_int_option(fd, SOL_SOCKET, SO_SNDBUF, o.socket_buffer);
            set_int_option(fd, SOL_SOCKET, SO_RCVBUF, o.socket_buffer);
        }
    }
}

std::string peer_address(const Socket& socket, int* port_out) {
    std::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (ec) return "?";
    const auto* sa = reinterpret_cast<const sockaddr*>(ep.data());
    char buf[INET6_ADDRSTRLEN] = {};
    if (sa->sa_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
        ::inet_ntop(AF_INET, &in->sin_addr, buf, sizeof buf);
        if (port_out) *port_out = ntohs(in->sin_port);
        return buf;
    }
    if (sa->sa_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, buf, sizeof buf);
        if (port_out) *port_out = ntohs(in6->sin6_port);
        return buf;
    }
    if (port_out) *port_out = 0;
    return "unix";
}

}  // namespace poolguard::net

namespace poolguard::net {
bool has_pending_input(const Socket& socket) {
    if (!socket.is_open()) return false;
    char byte;
    const ssize_t n = ::recv(const_cast<Socket&>(socket).native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
}

bool send_now(Socket& socket, std::string_view data) {
    if (!socket.is_open()) return false;
    const ssize_t n = ::send(socket.native_handle(), data.data(), data.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    return n == static_cast<ssize_t>(data.size());
}
}  // namespace poolguard::net

namespace poolguard::net {
void LogIfThrown::operator()(std::exception_ptr e) const {
    if (!e) return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& ex) {
        spdlog::error("{} ended with an exception: {}", what, ex.what());
    } catch (...) {
        spdlog::error("{} ended with an unknown exception", what);
    }
}
}  // namespace poolguard::net
