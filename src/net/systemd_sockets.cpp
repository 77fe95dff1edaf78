// Owns socket activation: the listening sockets a service manager passed (sd_listen_fds), checked and
// described for the proxy to adopt.
#include "net/systemd_sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include <cstring>

namespace poolguard::net::systemd {

namespace {
// Address, port and description of a bound socket, from getsockname.
void describe(PassedListener& l) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(l.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return;
    char host[INET6_ADDRSTRLEN] = {};
    if (addr.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&addr);
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        l.port = ntohs(in->sin_port);
        l.address = host;
        l.description = l.address + ":" + std::to_string(l.port);
    } else if (addr.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&addr);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        l.port = ntohs(in6->sin6_port);
        l.address = host;
        l.description = "[" + l.address + "]:" + std::to_string(l.port);
    } else if (addr.ss_family == AF_UNIX) {
        const auto* un = reinterpret_cast<const sockaddr_un*>(&addr);
        const size_t max = len > offsetof(sockaddr_un, sun_path) ? len - offsetof(sockaddr_un, sun_path) : 0;
        if (max > 0 && un->sun_path[0] == '\0')  // abstract: @name
            l.address = "@" + std::string(un->sun_path + 1, max - 1);
        else
            l.address = std::string(un->sun_path, ::strnlen(un->sun_path, max));
        l.description = "unix:" + l.address;
    }
}
}  // namespace

Result<std::vector<PassedListener>> passed_listeners() {
    std::vector<PassedListener> out;
    const int n = ::sd_listen_fds(0);
    if (n < 0) return fail(std::string("socket activation: ") + std::strerror(-n));
    for (int i = 0; i < n; ++i) {
        PassedListener l;
        l.fd = SD_LISTEN_FDS_START + i;
        for (int family : {AF_INET, AF_INET6, AF_UNIX}) {
            if (::sd_is_socket(l.fd, family, SOCK_STREAM, 1) > 0) {
                l.family = family;
                break;
            }
        }
        if (l.family == 0)
            return fail("socket activation: descriptor " + std::to_string(l.fd) +
                        " passed by the service manager is not a listening TCP or Unix stream socket");
        describe(l);
        if (l.description.empty()) l.description = "fd " + std::to_string(l.fd);
        out.push_back(std::move(l));
    }
    return out;
}

}  // namespace poolguard::net::systemd
