// Owns DSN parsing (URI and libpq conninfo forms) and redaction.
#include "dbview/dsn.h"

#include <charconv>

#include "config/connstring.h"

namespace poolguard::dbview {

namespace {

constexpr const char* kExpected =
    "expected postgres://user:pass@host:port/db or mysql://user:pass@host:port/db";

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

Result<std::string> percent_decode(std::string_view in) {
    std::string out;
    out.reserve(in.size());
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out.push_back(in[i]);
            continue;
        }
        if (i + 2 >= in.size()) return fail("bad DSN: truncated %-escape");
        const int hi = hex_value(in[i + 1]);
        const int lo = hex_value(in[i + 2]);
        if (hi < 0 || lo < 0)
            return fail("bad DSN: invalid %-escape \"" + std::string(in.substr(i, 3)) + "\"");
        out.push_back(static_cast<char>(hi * 16 + lo));
        i += 2;
    }
    return out;
}

Result<int> parse_port(std::string_view text) {
    int port = 0;
    auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (ec != std::errc{} || ptr != text.data() + text.size() || port <= 0 || port > 65535)
        return fail("bad DSN: port \"" + std::string(text) + "\" is not a number from 1 to 65535");
    return port;
}

Result<Dsn> parse_conninfo(std::string_view text) {
    auto pairs = config::parse_connstring(text);
    if (!pairs) return fail("bad DSN: " + pairs.error() + " (" + kExpected + ")");
    Dsn dsn;
    dsn.engine = Engine::postgres;
    for (auto& [key, value] : *pairs) {
        if (key == "user")
            dsn.user = value;
        else if (key == "password")
            dsn.password = value;
        else if (key == "host" || key == "hostaddr")
            dsn.host = value;
        else if (key == "dbname")
            dsn.database = value;
        else if (key == "port") {
            auto port = parse_port(value);
            if (!port) return std::unexpected(port.error());
            dsn.port = *port;
        } else
            dsn.params[key] = value;
    }
    return dsn;
}

}  // namespace

Result<Dsn> parse_dsn(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t'))
        text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\n'))
        text.remove_suffix(1);
    if (text.empty()) return fail(std::string("bad DSN: empty (") + kExpected + ")");
    const auto scheme_end = text.find("://");
    if (scheme_end == std::string_view::npos) {
        if (text.find('=') == std::string_view::npos)
            return fail("bad DSN \"" + std::string(text) + "\": " + kExpected);
        auto dsn = parse_conninfo(text);
        if (dsn) dsn->original = std::string(text);
        return dsn;
    }
    Dsn dsn;
    dsn.original = std::string(text);
    const std::string_view scheme = text.substr(0, scheme_end);
    if (scheme == "postgres" || scheme == "postgresql")
        dsn.engine = Engine::postgres;
    else if (scheme == "mysql" || scheme == "mariadb")
        dsn.engine = Engine::mysql;
    else
        return fail("bad DSN: unknown scheme \"" + std::string(scheme) + "://\" (" + kExpected + ")");

    std::string_view rest = text.substr(scheme_end + 3);
    std::string_view query;
    if (auto q = rest.find('?'); q != std::string_view::npos) {
        query = rest.substr(q + 1);
        rest = rest.substr(0, q);
    }
    std::string_view path;
    if (auto slash = rest.find('/'); slash != std::string_view::npos) {
        path = rest.substr(slash + 1);
        rest = rest.substr(0, slash);
    }
    // user:password@ — the password may contain '@' when not escaped, so split at the last '@'.
    if (auto at = rest.rfind('@'); at != std::string_view::npos) {
        std::string_view userinfo = rest.substr(0, at);
        rest = rest.substr(at + 1);
        std::string_view user = userinfo;
        if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
            user = userinfo.substr(0, colon);
            auto pw = percent_decode(userinfo.substr(colon + 1));
            if (!pw) return std::unexpected(pw.error());
            dsn.password = *pw;
        }
        auto u = percent_decode(user);
        if (!u) return std::unexpected(u.error());
        dsn.user = *u;
    }
    std::string_view host = rest;
    std::string_view port;
    if (!host.empty() && host.front() == '[') {
        const auto close = host.find(']');
        if (close == std::string_view::npos) return fail("bad DSN: unclosed '[' in host");
        std::string_view after = host.substr(close + 1);
        host = host.substr(1, close - 1);
        if (!after.empty()) {
            if (after.front() != ':') return fail("bad DSN: unexpected text after ']'");
            port = after.substr(1);
        }
    } else if (auto colon = host.rfind(':'); colon != std::string_view::npos) {
        port = host.substr(colon + 1);
        host = host.substr(0, colon);
    }
    if (host.find(',') != std::string_view::npos && dsn.engine == Engine::mysql)
        return fail("bad DSN: several hosts are not supported for mysql://");
    auto h = percent_decode(host);
    if (!h) return std::unexpected(h.error());
    dsn.host = *h;
    if (!port.empty()) {
        auto p = parse_port(port);
        if (!p) return std::unexpected(p.error());
        dsn.port = *p;
    }
    auto db = percent_decode(path);
    if (!db) return std::unexpected(db.error());
    dsn.database = *db;
    while (!query.empty()) {
        auto amp = query.find('&');
        std::string_view item = query.substr(0, amp);
        query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
        if (item.empty()) continue;
        auto eq = item.find('=');
        auto key = percent_decode(item.substr(0, eq));
        auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1));
        if (!key || !value) return std::unexpected(!key ? key.error() : value.error());
        if (key->empty()) return fail("bad DSN: empty query parameter name");
        dsn.params[*key] = *value;
    }
    // libpq lets ?host=/path and ?port= override; mirror that so the rest of poolguard sees one truth.
    if (auto it = dsn.params.find("host"); it != dsn.params.end() && dsn.host.empty()) dsn.host = it->second;
    if (auto it = dsn.params.find("port"); it != dsn.params.end() && dsn.port == 0) {
        auto p = parse_port(it->second);
        if (!p) return std::unexpected(p.error());
        dsn.port = *p;
    }
    return dsn;
}

std::string Dsn::libpq_conninfo() const {
    std::string out;
    auto add = [&out](const std::string& key, const std::string& value) {
        if (!out.empty()) out += ' ';
        out += key + "='";
        for (char c : value) {
            if (c == '\'' || c == '\\') out += '\\';
            out += c;
        }
        out += '\'';
    };
    if (!host.empty()) add("host", host);
    if (port != 0) add("port", std::to_string(port));
    if (!user.empty()) add("user", user);
    if (!password.empty()) add("password", password);
    if (!database.empty()) add("dbname", database);
    for (const auto& [key, value] : params)
        if (key != "host" && key != "port" && key != "user" && key != "password" && key != "dbname")
            add(key, value);
    return out;
}

std::string Dsn::redacted() const {
    if (password.empty()) return original;
    if (const auto scheme = original.find("://"); scheme != std::string::npos) {
        // The URI's (possibly %-encoded) password sits between the first ':' of the authority and its last
        // '@'.
        const auto start = scheme + 3;
        const auto slash = original.find('/', start);
        const auto authority =
            original.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        const auto at = authority.rfind('@');
        const auto colon = authority.find(':');
        if (at != std::string::npos && colon != std::string::npos && colon < at)
            return original.substr(0, start + colon + 1) + "***" + original.substr(start + at);
        return original;
    }
    const auto pos = original.find(password);
    if (pos == std::string::npos) return original;
    return original.substr(0, pos) + "***" + original.substr(pos + password.size());
}

}  // namespace poolguard::dbview
