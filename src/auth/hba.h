// Owns PgBouncer's auth_hba_file and auth_ident_file formats, sans I/O: parsing HBA lines and ident maps,
// and matching a login (connection kind, TLS, address, database, user) to the first rule that applies.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"

namespace poolguard::auth {

enum class ConnType { kLocal, kHost, kHostSsl, kHostNoSsl };
enum class HbaMethod { kTrust, kReject, kPassword, kMd5, kScramSha256, kPeer, kCert };
const char* to_string(HbaMethod method);

// An IPv4 address is kept IPv4-mapped (::ffff:a.b.c.d), so one 16-byte comparison covers both families.
struct IpNet {
    std::array<uint8_t, 16> addr{};
    std::array<uint8_t, 16> mask{};
    bool contains(const std::array<uint8_t, 16>& ip) const;
};

struct HbaRule {
    int line = 0;
    ConnType type = ConnType::kLocal;
    // Database field: `all`, `sameuser`, `replication` (physical replication only) or names.
    bool all_databases = false;
    bool same_user = false;
    bool replication = false;
    std::vector<std::string> databases;
    bool all_users = false;
    std::vector<std::string> users;
    bool all_addresses = true;  // `all`, or a local line
    IpNet network;
    HbaMethod method = HbaMethod::kReject;
    std::string map;  // map= option (peer, cert)
};

struct HbaRules {
    std::vector<HbaRule> rules;
};

// Reads an `@file` named in a list field (the path as written, relative to the HBA file's directory).
using IncludeReader = std::function<Result<std::string>(const std::string& path)>;

struct HbaParse {
    HbaRules rules;
    std::vector<std::string> warnings;  // lines skipped, as "hba line N: why"
};
// Parses the text of an HBA file. A line that cannot be used (unknown method, unsupported keyword, bad
// address) is skipped with a warning, as PgBouncer does; an `@file` that cannot be read skips its line.
HbaParse parse_hba(std::string_view text, const IncludeReader& read_include);

// Parses an IP address ("10.1.2.3", "::1") into the IPv4-mapped 16-byte form.
std::optional<std::array<uint8_t, 16>> parse_ip(std::string_view text);

// What the client's connection looks like, as the matcher needs it.
struct HbaLogin {
    bool unix_socket = false;
    bool tls = false;                                // from the TLS layer; false until client TLS exists
    std::optional<std::array<uint8_t, 16>> address;  // TCP peer address
    std::string database;
    std::string user;
    bool physical_replication = false;  // replication=true (matches only the `replication` keyword)
};
// The first rule that applies, or nullptr (no rule: the login is refused).
const HbaRule* match_hba(const HbaRules& rules, const HbaLogin& login);

// auth_ident_file: lines `map-name system-username database-username` (database-username may be `all`).
struct IdentEntry {
    std::string map;
    std::string system_user;
    std::string database_user;  // "all" matches any
};
struct IdentMaps {
    std::vector<IdentEntry> entries;
};
struct IdentParse {
    IdentMaps maps;
    std::vector<std::string> warnings;
};
IdentParse parse_ident(std::string_view text);
// True when `map` lets OS user `system_user` log in as `database_user`.
bool ident_allows(const IdentMaps& maps, std::string_view map, std::string_view system_user,
                  std::string_view database_user);

// Both files loaded from disk. An empty ident path means no maps. Errors: the HBA file cannot be read.
struct AuthFiles {
    HbaRules hba;
    IdentMaps ident;
    std::vector<std::string> warnings;
};
Result<AuthFiles> load_auth_files(const std::string& hba_path, const std::string& ident_path);

}  // namespace poolguard::auth
