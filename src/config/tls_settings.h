// Owns which TLS settings poolguard can honour: the one place that refuses a TLS configuration it cannot serve.
#pragma once

#include <string>

#include "config/config.h"

namespace poolguard::config {

// The first TLS-related setting of `cfg` that poolguard cannot honour, as "name=value" (so the refusal names
// it), or "" when it can honour them all. A configuration that asks for TLS poolguard cannot give is refused
// at start, on reload and by SET: serving plaintext instead would be a silent downgrade.
std::string unhonoured_tls_setting(const Config& cfg);

// Names the parameter inside a "name=value" returned by unhonoured_tls_setting.
std::string tls_setting_name(const std::string& setting);

}  // namespace poolguard::config
