// Owns parsing the host list of a [databases] entry and load_balance_hosts (see host_list.h).
#include "config/host_list.h"

#include <charconv>

#include "config/value_parser.h"

namespace poolguard::config {

namespace {

std::vector<std::string_view> split_commas(std::string_view s) {
    std::vector<std::string_view> out;
    size_t start = 0;
    while (true) {
        const size_t comma = s.find(',', start);
        out.push_back(trim(s.substr(start, comma == std::string_view::npos ? s.npos : comma - start)));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return out;
}

std::expected<int, std::string> parse_port(std::string_view text) {
    int port = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), port);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || port < 1 || port > 65535)
        return std::unexpected("invalid port '" + std::string(text) + "' (expected 1 to 65535)");
    return port;
}

}  // namespace

std::expected<std::vector<HostEntry>, std::string> parse_host_list(std::string_view hosts,
                                                                   std::string_view ports, int default_port) {
    std::vector<HostEntry> out;
    std::vector<bool> own_port;  // the entry named its port itself (host:port): port= does not override it
    if (trim(hosts).empty()) {
        out.push_back(HostEntry{"", default_port});
        own_port.push_back(false);
    } else {
        for (std::string_view item : split_commas(hosts)) {
            if (item.empty())
                return std::unexpected("empty entry in the host list '" + std::string(hosts) + "'");
            HostEntry e{std::string(item), default_port};
            bool own = false;
            if (item.front() == '[') {
                // [v6] or [v6]:port
                const size_t close = item.find(']');
                if (close == std::string_view::npos)
                    return std::unexpected("missing ']' in host '" + std::string(item) + "'");
                e.host = std::string(item.substr(1, close - 1));
                std::string_view rest = item.substr(close + 1);
                if (!rest.empty()) {
                    if (rest.front() != ':')
                        return std::unexpected("unexpected text after ']' in host '" + std::string(item) +
                                               "'");
                    auto port = parse_port(rest.substr(1));
                    if (!port) return std::unexpected(port.error());
                    e.port = *port;
                    own = true;
                }
            } else if (item.front() != '/' && item.front() != '@') {
                // host:port; a bare IPv6 address (two or more colons) has no port.
                const size_t colon = item.find(':');
                if (colon != std::string_view::npos && item.find(':', colon + 1) == std::string_view::npos) {
                    auto port = parse_port(item.substr(colon + 1));
                    if (!port) return std::unexpected(port.error() + " in host '" + std::string(item) + "'");
                    e.host = std::string(item.substr(0, colon));
                    e.port = *port;
                    own = true;
                    if (e.host.empty())
                        return std::unexpected("no host name before ':' in '" + std::string(item) + "'");
                }
            }
            own_port.push_back(own);
            out.push_back(std::move(e));
        }
    }
    if (!trim(ports).empty()) {
        const auto list = split_commas(ports);
        if (list.size() != 1 && list.size() != out.size())
            return std::unexpected("port lists " + std::to_string(list.size()) + " ports for " +
                                   std::to_string(out.size()) + " hosts (give one, or one per host)");
        for (size_t i = 0; i < out.size(); ++i) {
            if (own_port[i]) continue;
            auto port = parse_port(list.size() == 1 ? list[0] : list[i]);
            if (!port) return std::unexpected(port.error());
            out[i].port = *port;
        }
    }
    return out;
}

std::expected<bool, std::string> parse_load_balance_hosts(std::string_view value) {
    const std::string lower = to_lower(trim(value));
    if (lower == "round-robin") return true;
    if (lower == "disable") return false;
    return std::unexpected("expected round-robin or disable");
}

}  // namespace poolguard::config
