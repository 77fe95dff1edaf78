// Owns who is on the other end of a Unix-domain socket: the peer's UID (SO_PEERCRED) and OS user names.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "net/socket.h"

namespace poolguard::net {

// The UID of the process at the other end of a Unix-domain socket; nullopt for TCP or when unknown.
std::optional<uint32_t> peer_uid(const Socket& socket);
// The OS user name of `uid` (getpwuid_r); nullopt when it has none.
std::optional<std::string> os_user_name(uint32_t uid);

}  // namespace poolguard::net
