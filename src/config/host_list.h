// Owns the host list of a [databases] entry (PgBouncer 1.25): `host=a,b:5433,[::1]:5434` and
// `port=5432,5433`, parsed into one (host, port) per entry, and the load_balance_hosts values.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <vector>

namespace poolguard::config {

struct HostEntry {
    std::string host;  // name, address, or a Unix socket directory ('/...' or '@...'); empty = default socket
    int port = 5432;
    bool operator==(const HostEntry&) const = default;
};

// `hosts` as written after host= (may be empty: one entry with an empty host), `default_port` the port= value
// for entries without their own. `ports` (may be empty) is a comma list from port=: one per host, or one for
// all. An entry may carry its own port as host:port or [v6]:port. Errors name the offending entry.
std::expected<std::vector<HostEntry>, std::string> parse_host_list(std::string_view hosts,
                                                                   std::string_view ports = {},
                                                                   int default_port = 5432);

// load_balance_hosts: true for round-robin, false for disable.
std::expected<bool, std::string> parse_load_balance_hosts(std::string_view value);

}  // namespace poolguard::config
