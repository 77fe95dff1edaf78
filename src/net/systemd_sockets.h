// Owns socket activation: the listening sockets a service manager passed (LISTEN_FDS/LISTEN_PID, libsystemd's
// sd_listen_fds), checked and described for the proxy to adopt instead of opening its own.
#pragma once

#include <string>
#include <vector>

#include "common/error.h"

namespace poolguard::net::systemd {

// One socket the service manager passed: a listening stream socket of AF_INET, AF_INET6 or AF_UNIX.
struct PassedListener {
    int fd = -1;
    int family = 0;           // AF_INET, AF_INET6 or AF_UNIX
    int port = 0;             // TCP port (0 for AF_UNIX)
    std::string address;      // "127.0.0.1", "::1", or the Unix socket's path ("" when unnamed)
    std::string description;  // "127.0.0.1:6432", "[::1]:6432", "unix:/run/poolguard/.s.PGSQL.6432"
};

// The sockets passed to this process (none when LISTEN_FDS is unset or LISTEN_PID is another process's,
// e.g. after -d forked). The environment is left as it is, as PgBouncer does. An error names the first
// descriptor that is not a listening TCP or Unix stream socket: poolguard refuses to start then.
Result<std::vector<PassedListener>> passed_listeners();

}  // namespace poolguard::net::systemd
