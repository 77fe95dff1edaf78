// Owns which TLS settings poolguard can honour (see tls_settings.h).
#include "config/tls_settings.h"

namespace poolguard::config {

std::string unhonoured_tls_setting(const Config& cfg) {
    if (cfg.client_tls_sslmode != "disable") return "client_tls_sslmode=" + cfg.client_tls_sslmode;
    const std::string& server = cfg.server_tls_sslmode;
    // prefer without certificates may fall back to plain TCP by definition, so plain TCP honours it.
    if (server != "disable" && server != "prefer") return "server_tls_sslmode=" + server;
    if (server == "prefer") {
        if (!cfg.server_tls_key_file.empty()) return "server_tls_key_file=" + cfg.server_tls_key_file;
        if (!cfg.server_tls_cert_file.empty()) return "server_tls_cert_file=" + cfg.server_tls_cert_file;
        if (!cfg.server_tls_ca_file.empty()) return "server_tls_ca_file=" + cfg.server_tls_ca_file;
    }
    if (cfg.auth_type == AuthType::kCert) return "auth_type=cert";
    return {};
}

std::string tls_setting_name(const std::string& setting) { return setting.substr(0, setting.find('=')); }

}  // namespace poolguard::config
