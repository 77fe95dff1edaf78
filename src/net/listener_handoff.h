// Owns the pieces of the listener hand-off between poolguard instances that share a port with so_reuseport:
// the abstract unix socket name each instance listens on, finding the other instances in /proc/net/unix,
// and passing listening sockets over a unix socket (SCM_RIGHTS) with the peer's uid checked.
//
// Why: with SO_REUSEPORT every instance has its own listening socket and its own accept queue. When the old
// instance closes its socket in a rolling restart, the kernel resets the connections still in that queue
// (unless net.ipv4.tcp_migrate_req is set, which needs root and is off by default). Handing the socket to the
// new instance instead means it is never closed: the connections queued on it are accepted by the new one.
#pragma once

#include <sys/types.h>

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace poolguard::net::handoff {

// The abstract socket name (without its leading NUL) of the instance `pid` serving TCP port `port`.
std::string socket_name(int port, pid_t pid);

// The pids of the instances serving `port` that the text of /proc/net/unix lists, without `self`,
// newest (highest pid) first.
std::vector<pid_t> sibling_pids(std::string_view proc_net_unix, int port, pid_t self);

// Sends one message carrying `fds` over the connected unix socket `sock`.
bool send_fds(int sock, std::span<const int> fds, std::error_code& ec);

// Receives one message and the descriptors it carries (close-on-exec). Descriptors beyond `max_fds` or a
// truncated message are closed and reported as an error.
std::vector<int> receive_fds(int sock, size_t max_fds, std::error_code& ec);

// The pid and uid of the process at the other end of the unix socket `sock`.
struct PeerCredentials {
    pid_t pid;
    uid_t uid;
};
std::optional<PeerCredentials> peer_credentials(int sock);

// The TCP port a listening socket is bound to, or nullopt when `fd` is not a listening TCP socket.
std::optional<int> listening_tcp_port(int fd);

}  // namespace poolguard::net::handoff
