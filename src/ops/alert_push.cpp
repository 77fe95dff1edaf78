// Owns the Alertmanager HTTP call (cpp-httplib) and the alert's JSON body.
#include "ops/alert_push.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

namespace poolguard::ops {

Status push_alert(const std::string& url, const PushedAlert& alert) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos || url.substr(0, scheme) != "http")
        return fail("alertmanager URL must be http://host:port (got \"" + url + "\")");
    const auto path_start = url.find('/', scheme + 3);
    const std::string base = url.substr(0, path_start);
    std::string path = path_start == std::string::npos ? "" : url.substr(path_start);
    while (!path.empty() && path.back() == '/')
        path.pop_back();
    if (path.find("/api/") == std::string::npos) path += "/api/v2/alerts";

    nlohmann::json a = {{"labels", alert.labels}, {"annotations", alert.annotations}};
    if (!alert.starts_at.empty()) a["startsAt"] = alert.starts_at;
    if (!alert.ends_at.empty()) a["endsAt"] = alert.ends_at;
    const std::string body = nlohmann::json::array({a}).dump();

    httplib::Client client(base);
    client.set_connection_timeout(3, 0);
    client.set_read_timeout(5, 0);
    auto res = client.Post(path.c_str(), body, "application/json");
    if (!res) return fail("alertmanager at " + base + " unreachable: " + httplib::to_string(res.error()));
    if (res->status < 200 || res->status >= 300)
        return fail("alertmanager at " + base + " answered HTTP " + std::to_string(res->status) + ": " +
                    res->body.substr(0, 200));
    return {};
}

}  // namespace poolguard::ops
