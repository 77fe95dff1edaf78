// Owns the socket type used for both TCP and Unix connections and helpers to open and tune them.
#pragma once

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <chrono>
#include <string>

#include "common/error.h"

namespace poolguard::net {

// Completion token for the hot path: errors come back as values (no exceptions on the data plane).
inline constexpr auto use_nothrow = asio::experimental::as_tuple(asio::use_awaitable);

// One type for TCP and Unix-domain stream sockets, so sessions do not care which the peer used.
using Socket = asio::generic::stream_protocol::socket;
using Acceptor = asio::basic_socket_acceptor<asio::generic::stream_protocol>;

// Connects to a PostgreSQL server: `host` starting with '/' is a Unix socket directory (file
// .s.PGSQL.<port>).
asio::awaitable<Result<Socket>> connect_to_server(const std::string& host, int port,
                                                  std::chrono::milliseconds timeout);

// PgBouncer's tcp_keepalive / tcp_keepcnt / tcp_keepidle / tcp_keepintvl / tcp_user_timeout /
// tcp_socket_buffer; 0 = the
// OS default (the option is left alone).
struct TcpOptions {
    bool keepalive = true;
    int keepcnt = 0;
    int keepidle = 0;         // seconds
    int keepintvl = 0;        // seconds
    int user_timeout_ms = 0;  // TCP_USER_TIMEOUT
    int socket_buffer = 0;    // tcp_socket_buffer: SO_SNDBUF and SO_RCVBUF in bytes
};
// Process-wide: tune_socket applies them to every TCP socket opened or accepted from here on (set at start
// and at each reload or SET; thread-safe).
void set_tcp_options(const TcpOptions& options);
TcpOptions tcp_options();

// TCP_NODELAY and the TcpOptions on TCP sockets (client and server side); no-op on Unix sockets.
void tune_socket(Socket& socket);

// "1.2.3.4:5678" or "unix" for logs and SHOW CLIENTS.
std::string peer_address(const Socket& socket, int* port_out = nullptr);

}  // namespace poolguard::net

namespace poolguard::net {
// Completion handler for co_spawn: a coroutine that ends with an exception (a bug, or memory exhaustion)
// is logged with what it was doing, never silently lost as with asio::detached.
struct LogIfThrown {
    const char* what;
    void operator()(std::exception_ptr e) const;
};

// Best-effort immediate send of a small final message (an ErrorResponse before closing): never blocks,
// never raises SIGPIPE; returns false when the bytes could not all be handed to the kernel.
bool send_now(Socket& socket, std::string_view data);

// One non-blocking recv(MSG_PEEK) of a byte: true when the peer's bytes, its end of file or a socket error
// are waiting to be read; false when nothing is (or the socket is closed).
bool has_pending_input(const Socket& socket);
}  // namespace poolguard::net
