// Tests that a TLS setting poolguard cannot honour refuses start, reload (same loader) and SET, naming it.
#include "config/tls_settings.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace poolguard::config {
namespace {

constexpr const char* kAuth = "[pgbouncer]\nauth_file = /etc/pgbouncer/userlist.txt\n";

std::string refusal(const std::string& lines) {
    auto result = parse_config(std::string(kAuth) + lines, "pg.ini");
    return result ? std::string() : result.error().message;
}

TEST(TlsSettings, DefaultsAndPlainModesLoad) {
    EXPECT_EQ(refusal(""), "");
    EXPECT_EQ(refusal("client_tls_sslmode = disable\nserver_tls_sslmode = disable\n"), "");
    EXPECT_EQ(refusal("server_tls_sslmode = prefer\n"), "");
    // Files without a mode that uses them are not used (as in PgBouncer): nothing to honour.
    EXPECT_EQ(refusal("client_tls_key_file = /k.pem\nclient_tls_cert_file = /c.pem\n"), "");
}

TEST(TlsSettings, UnhonouredModeRefusesNamingTheSettingAndLine) {
    const std::string msg = refusal("client_tls_sslmode = require\n");
    EXPECT_NE(msg.find("pg.ini:3: client_tls_sslmode=require cannot be honoured"), std::string::npos) << msg;
    EXPECT_NE(msg.find("rather than serving plaintext"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
    for (const char* mode : {"require", "verify-ca", "verify-full"}) {
        const std::string m = refusal(std::string("server_tls_sslmode = ") + mode + "\n");
        EXPECT_NE(m.find(std::string("pg.ini:3: server_tls_sslmode=") + mode), std::string::npos) << m;
    }
}

TEST(TlsSettings, PreferWithCertificatesRefuses) {
    const std::string msg = refusal("server_tls_sslmode = prefer\nserver_tls_ca_file = /ca.pem\n");
    EXPECT_NE(msg.find("pg.ini:4: server_tls_ca_file=/ca.pem"), std::string::npos) << msg;
}

TEST(TlsSettings, AuthTypeCertRefuses) {
    const std::string msg = refusal("auth_type = cert\n");
    EXPECT_NE(msg.find("pg.ini:3: auth_type=cert cannot be honoured"), std::string::npos) << msg;
}

TEST(TlsSettings, SetRefusesAndKeepsTheOldValue) {
    auto loaded = parse_config(kAuth, "pg.ini");
    ASSERT_TRUE(loaded);
    Config cfg = loaded->config;
    Status st = set_parameter(cfg, "server_tls_sslmode", "verify-full");
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find("server_tls_sslmode=verify-full"), std::string::npos);
    EXPECT_EQ(cfg.server_tls_sslmode, "disable");
    EXPECT_TRUE(set_parameter(cfg, "server_tls_sslmode", "prefer"));
}

}  // namespace
}  // namespace poolguard::config
