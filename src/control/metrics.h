// Owns the Prometheus text exposition of /metrics: per-pool metrics under prometheus-community
// pgbouncer_exporter's names (so its dashboards work) and poolguard's own under poolguard_.
#pragma once

#include <string>

#include "control/state.h"

namespace poolguard::control {

std::string render_metrics(const ControlStatus& status);

// Prometheus label value escaping (backslash, double quote, newline).
std::string escape_label(const std::string& value);

}  // namespace poolguard::control
