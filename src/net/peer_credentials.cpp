// Owns reading a Unix-socket peer's credentials (see peer_credentials.h).
#include "net/peer_credentials.h"

#include <pwd.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <vector>

namespace poolguard::net {

std::optional<uint32_t> peer_uid(const Socket& socket) {
    std::error_code ec;
    auto ep = socket.local_endpoint(ec);
    if (ec || reinterpret_cast<const sockaddr*>(ep.data())->sa_family != AF_UNIX) return std::nullopt;
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(const_cast<Socket&>(socket).native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &len) !=
            0 ||
        len != sizeof cred)
        return std::nullopt;
    return static_cast<uint32_t>(cred.uid);
}

std::optional<std::string> os_user_name(uint32_t uid) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    if (::getpwuid_r(static_cast<uid_t>(uid), &pw, buf.data(), buf.size(), &found) != 0 || !found)
        return std::nullopt;
    return std::string(found->pw_name);
}

}  // namespace poolguard::net
