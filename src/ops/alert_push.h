// Owns pushing one alert to Alertmanager's v2 API (POST /api/v2/alerts) for `poolguard watch --alertmanager`.
#pragma once

#include <map>
#include <string>

#include "common/error.h"

namespace poolguard::ops {

struct PushedAlert {
    std::map<std::string, std::string> labels;       // alertname, severity, instance, ...
    std::map<std::string, std::string> annotations;  // summary, description, runbook
    std::string starts_at;                           // RFC 3339
    std::string ends_at;                             // RFC 3339; set (to now) to resolve the alert
};

// `url` is the Alertmanager base ("http://am:9093") or the full ".../api/v2/alerts". HTTP only.
Status push_alert(const std::string& url, const PushedAlert& alert);

}  // namespace poolguard::ops
