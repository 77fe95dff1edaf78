// Owns parsing and matching of auth_hba_file and auth_ident_file (see hba.h); load_auth_files is the only
// part that touches the file system.
#include "auth/hba.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace poolguard::auth {

const char* to_string(HbaMethod method) {
    switch (method) {
        case HbaMethod::kTrust:
            return "trust";
        case HbaMethod::kReject:
            return "reject";
        case HbaMethod::kPassword:
            return "password";
        case HbaMethod::kMd5:
            return "md5";
        case HbaMethod::kScramSha256:
            return "scram-sha-256";
        case HbaMethod::kPeer:
            return "peer";
        case HbaMethod::kCert:
            return "cert";
    }
    return "?";
}

bool IpNet::contains(const std::array<uint8_t, 16>& ip) const {
    for (size_t i = 0; i < ip.size(); ++i)
        if ((ip[i] & mask[i]) != (addr[i] & mask[i])) return false;
    return true;
}

std::optional<std::array<uint8_t, 16>> parse_ip(std::string_view text) {
    std::string s(text);
    std::array<uint8_t, 16> out{};
    in_addr v4{};
    if (::inet_pton(AF_INET, s.c_str(), &v4) == 1) {
        out[10] = 0xff;
        out[11] = 0xff;
        std::memcpy(out.data() + 12, &v4, 4);
        return out;
    }
    in6_addr v6{};
    if (::inet_pton(AF_INET6, s.c_str(), &v6) == 1) {
        std::memcpy(out.data(), &v6, 16);
        return out;
    }
    return std::nullopt;
}

namespace {

struct Token {
    std::string text;
    bool quoted = false;
    bool is(std::string_view keyword) const { return !quoted && text == keyword; }
};
using Field = std::vector<Token>;  // a comma-separated list

// Splits one logical line into fields: whitespace separates fields, commas separate list items within a
// field (whitespace after a comma continues the list), double quotes protect keywords and separators
// ("" inside quotes is one quote), # outside quotes starts a comment.
std::vector<Field> split_fields(std::string_view line) {
    std::vector<Field> fields;
    size_t i = 0;
    auto space = [&](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
    auto skip_space = [&]() {
        while (i < line.size() && space(line[i]))
            ++i;
    };
    while (true) {
        skip_space();
        if (i >= line.size() || line[i] == '#') break;
        Field field;
        while (true) {
            Token tok;
            bool in_quotes = false;
            while (i < line.size()) {
                const char c = line[i];
                if (in_quotes) {
                    if (c == '"') {
                        if (i + 1 < line.size() && line[i + 1] == '"') {
                            tok.text.push_back('"');
                            i += 2;
                            continue;
                        }
                        in_quotes = false;
                        ++i;
                        continue;
                    }
                    tok.text.push_back(c);
                    ++i;
                    continue;
                }
                if (space(c) || c == ',' || c == '#') break;
                if (c == '"') {
                    in_quotes = true;
                    tok.quoted = true;
                    ++i;
                    continue;
                }
                tok.text.push_back(c);
                ++i;
            }
            field.push_back(std::move(tok));
            if (i < line.size() && line[i] == ',') {
                ++i;
                skip_space();
                if (i < line.size() && line[i] != '#') continue;
            }
            break;
        }
        fields.push_back(std::move(field));
    }
    return fields;
}

// Lines of a file, with a trailing backslash joining the next line.
std::vector<std::pair<int, std::string>> logical_lines(std::string_view text) {
    std::vector<std::pair<int, std::string>> out;
    std::string pending;
    int start = 0;
    int n = 0;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        ++n;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (pending.empty()) start = n;
        if (!line.empty() && line.back() == '\\') {
            pending.append(line.substr(0, line.size() - 1));
            pending.push_back(' ');
        } else {
            pending.append(line);
            out.emplace_back(start, std::move(pending));
            pending.clear();
        }
        if (end == text.size()) break;
        pos = end + 1;
    }
    if (!pending.empty()) out.emplace_back(start, std::move(pending));
    return out;
}

// Expands a list field: `@file` items become the names listed in that file (nested up to a few levels).
Status expand_list(const Field& field, const IncludeReader& read, std::vector<Token>& out, int depth = 0) {
    for (const auto& tok : field) {
        if (!tok.quoted && tok.text.size() > 1 && tok.text[0] == '@') {
            if (depth > 8) return fail("@file nested too deeply: " + tok.text);
            if (!read) return fail("cannot read " + tok.text);
            auto content = read(tok.text.substr(1));
            if (!content) return fail("cannot read " + tok.text + ": " + content.error().message);
            for (const auto& [line_no, line] : logical_lines(*content)) {
                (void)line_no;
                for (const auto& inner : split_fields(line))
                    if (auto st = expand_list(inner, read, out, depth + 1); !st) return st;
            }
            continue;
        }
        out.push_back(tok);
    }
    return {};
}

std::optional<HbaMethod> parse_method(std::string_view m) {
    if (m == "trust") return HbaMethod::kTrust;
    if (m == "reject") return HbaMethod::kReject;
    if (m == "password") return HbaMethod::kPassword;
    if (m == "md5") return HbaMethod::kMd5;
    if (m == "scram-sha-256") return HbaMethod::kScramSha256;
    if (m == "peer") return HbaMethod::kPeer;
    if (m == "cert") return HbaMethod::kCert;
    return std::nullopt;
}

std::optional<std::array<uint8_t, 16>> prefix_mask(int bits, bool v4) {
    const int total = v4 ? 32 : 128;
    if (bits < 0 || bits > total) return std::nullopt;
    std::array<uint8_t, 16> mask{};
    int ones = bits + (v4 ? 96 : 0);
    for (size_t i = 0; i < 16; ++i) {
        const int b = std::clamp(ones - static_cast<int>(i) * 8, 0, 8);
        mask[i] = static_cast<uint8_t>(0xff00 >> b);
    }
    return mask;
}

bool is_v4_mapped(const std::array<uint8_t, 16>& a) {
    for (int i = 0; i < 10; ++i)
        if (a[i] != 0) return false;
    return a[10] == 0xff && a[11] == 0xff;
}

// One line into a rule; an error says why it is skipped.
Result<HbaRule> parse_rule(int line_no, const std::vector<Field>& fields, const IncludeReader& read) {
    HbaRule rule;
    rule.line = line_no;
    auto single = [&](size_t i) -> const Token* {
        if (i >= fields.size() || fields[i].size() != 1) return nullptr;
        return &fields[i][0];
    };
    const Token* type = single(0);
    if (!type) return fail("invalid connection type");
    if (type->is("local"))
        rule.type = ConnType::kLocal;
    else if (type->is("host"))
        rule.type = ConnType::kHost;
    else if (type->is("hostssl"))
        rule.type = ConnType::kHostSsl;
    else if (type->is("hostnossl"))
        rule.type = ConnType::kHostNoSsl;
    else
        return fail("unsupported connection type: " + type->text);
    const bool local = rule.type == ConnType::kLocal;
    if (fields.size() < (local ? 4u : 5u)) return fail("end-of-line before authentication method");

    std::vector<Token> dbs;
    if (auto st = expand_list(fields[1], read, dbs); !st) return std::unexpected(st.error());
    for (const auto& t : dbs) {
        if (t.is("all"))
            rule.all_databases = true;
        else if (t.is("sameuser"))
            rule.same_user = true;
        else if (t.is("replication"))
            rule.replication = true;
        else if (t.is("samerole") || t.is("samegroup"))
            return fail("unsupported database keyword: " + t.text);
        else
            rule.databases.push_back(t.text);
    }
    std::vector<Token> users;
    if (auto st = expand_list(fields[2], read, users); !st) return std::unexpected(st.error());
    for (const auto& t : users) {
        if (t.is("all"))
            rule.all_users = true;
        else if (!t.quoted && !t.text.empty() && t.text[0] == '+')
            return fail("unsupported user group: " + t.text);
        else
            rule.users.push_back(t.text);
    }

    size_t next = 3;
    if (!local) {
        const Token* addr = single(3);
        if (!addr) return fail("invalid address");
        next = 4;
        if (addr->is("all")) {
            rule.all_addresses = true;
        } else if (addr->is("samehost") || addr->is("samenet")) {
            return fail("unsupported address keyword: " + addr->text);
        } else {
            rule.all_addresses = false;
            const auto slash = addr->text.find('/');
            auto ip = parse_ip(addr->text.substr(0, slash));
            if (!ip) return fail("invalid IP address: " + addr->text);
            std::optional<std::array<uint8_t, 16>> mask;
            const bool v4 = is_v4_mapped(*ip);
            if (slash != std::string::npos) {
                const std::string bits = addr->text.substr(slash + 1);
                int n = -1;
                if (!bits.empty() && bits.size() <= 3 && std::all_of(bits.begin(), bits.end(), ::isdigit))
                    n = std::stoi(bits);
                mask = prefix_mask(n, v4);
                if (!mask) return fail("invalid CIDR mask: " + addr->text);
            } else {
                const Token* m = single(4);
                auto parsed = m ? parse_ip(m->text) : std::nullopt;
                if (!parsed || is_v4_mapped(*parsed) != v4)
                    return fail("invalid IP mask after " + addr->text);
                mask = parsed;
                if (v4)  // the mapped prefix must match exactly
                    for (int i = 0; i < 12; ++i)
                        (*mask)[i] = 0xff;
                next = 5;
            }
            rule.network.addr = *ip;
            rule.network.mask = *mask;
        }
    }
    const Token* method = single(next);
    if (!method) return fail("end-of-line before authentication method");
    auto m = parse_method(method->text);
    if (!m) return fail("unsupported method: " + method->text);
    rule.method = *m;
    for (size_t i = next + 1; i < fields.size(); ++i) {
        const Token* opt = single(i);
        if (!opt) return fail("invalid option");
        const auto eq = opt->text.find('=');
        if (eq == std::string::npos) return fail("invalid option: " + opt->text);
        const std::string key = opt->text.substr(0, eq);
        if (key == "map") {
            if (rule.method != HbaMethod::kPeer && rule.method != HbaMethod::kCert)
                return fail("map= is only supported for peer and cert");
            rule.map = opt->text.substr(eq + 1);
        } else {
            return fail("unsupported option: " + key);
        }
    }
    return rule;
}

bool listed(const std::vector<std::string>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

}  // namespace

HbaParse parse_hba(std::string_view text, const IncludeReader& read_include) {
    HbaParse out;
    for (const auto& [line_no, line] : logical_lines(text)) {
        auto fields = split_fields(line);
        if (fields.empty()) continue;
        auto rule = parse_rule(line_no, fields, read_include);
        if (!rule) {
            out.warnings.push_back("hba line " + std::to_string(line_no) + ": " + rule.error().message +
                                   "; line ignored");
            continue;
        }
        out.rules.rules.push_back(std::move(*rule));
    }
    return out;
}

const HbaRule* match_hba(const HbaRules& rules, const HbaLogin& login) {
    for (const auto& r : rules.rules) {
        switch (r.type) {
            case ConnType::kLocal:
                if (!login.unix_socket) continue;
                break;
            case ConnType::kHost:
                if (login.unix_socket) continue;
                break;
            case ConnType::kHostSsl:
                if (login.unix_socket || !login.tls) continue;
                break;
            case ConnType::kHostNoSsl:
                if (login.unix_socket || login.tls) continue;
                break;
        }
        if (login.physical_replication) {
            if (!r.replication) continue;
        } else if (!r.all_databases && !(r.same_user && login.database == login.user) &&
                   !listed(r.databases, login.database)) {
            continue;
        }
        if (!r.all_users && !listed(r.users, login.user)) continue;
        if (r.type != ConnType::kLocal && !r.all_addresses &&
            (!login.address || !r.network.contains(*login.address)))
            continue;
        return &r;
    }
    return nullptr;
}

IdentParse parse_ident(std::string_view text) {
    IdentParse out;
    for (const auto& [line_no, line] : logical_lines(text)) {
        auto fields = split_fields(line);
        if (fields.empty()) continue;
        auto warn = [&, n = line_no](const std::string& why) {
            out.warnings.push_back("ident line " + std::to_string(n) + ": " + why + "; line ignored");
        };
        if (fields.size() != 3 || fields[0].size() != 1 || fields[1].size() != 1 || fields[2].size() != 1) {
            warn("expected map-name system-username database-username");
            continue;
        }
        const Token& sys = fields[1][0];
        const Token& db = fields[2][0];
        if (!sys.quoted && !sys.text.empty() && sys.text[0] == '/') {
            warn("regular expressions are not supported");
            continue;
        }
        if (!db.quoted && !db.text.empty() && (db.text[0] == '+' || db.text[0] == '/')) {
            warn("groups and regular expressions are not supported");
            continue;
        }
        out.maps.entries.push_back({fields[0][0].text, sys.text, db.is("all") ? "all" : db.text});
        if (db.quoted && db.text == "all") out.maps.entries.back().database_user = db.text;  // literal
    }
    return out;
}

bool ident_allows(const IdentMaps& maps, std::string_view map, std::string_view system_user,
                  std::string_view database_user) {
    for (const auto& e : maps.entries)
        if (e.map == map && e.system_user == system_user &&
            (e.database_user == "all" || e.database_user == database_user))
            return true;
    return false;
}

namespace {
Result<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("cannot open " + path + ": " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return fail("cannot read " + path);
    return ss.str();
}
}  // namespace

Result<AuthFiles> load_auth_files(const std::string& hba_path, const std::string& ident_path) {
    AuthFiles out;
    auto text = read_file(hba_path);
    if (!text) return fail("auth_hba_file: " + text.error().message);
    const auto dir = std::filesystem::path(hba_path).parent_path();
    auto parsed = parse_hba(*text, [&](const std::string& name) {
        const std::filesystem::path p(name);
        return read_file(p.is_absolute() ? name : (dir / p).string());
    });
    out.hba = std::move(parsed.rules);
    out.warnings = std::move(parsed.warnings);
    if (!ident_path.empty()) {
        auto ident = read_file(ident_path);
        if (!ident) return fail("auth_ident_file: " + ident.error().message);
        auto maps = parse_ident(*ident);
        out.ident = std::move(maps.maps);
        out.warnings.insert(out.warnings.end(), maps.warnings.begin(), maps.warnings.end());
    }
    return out;
}

}  // namespace poolguard::auth
