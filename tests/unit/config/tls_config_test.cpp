// Tests that the TLS settings load with PgBouncer 1.25's names, values and defaults (building the contexts
// from them is tested in tests/unit/net/tls_context_test.cpp).
#include <gtest/gtest.h>

#include "config/config.h"

namespace poolguard::config {
namespace {

constexpr const char* kAuth = "[pgbouncer]\nauth_file = /etc/pgbouncer/userlist.txt\n";

std::string refusal(const std::string& lines) {
    auto result = parse_config(std::string(kAuth) + lines, "pg.ini");
    return result ? std::string() : result.error().message;
}

TEST(TlsSettings, ModesAndFilesLoad) {
    EXPECT_EQ(refusal(""), "");
    for (const char* mode : {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}) {
        EXPECT_EQ(
            refusal(std::string("client_tls_sslmode = ") + mode + "\nserver_tls_sslmode = " + mode + "\n"),
            "")
            << mode;
    }
    auto r = parse_config(
        std::string(kAuth) +
            "client_tls_key_file = /k.pem\nclient_tls_cert_file = /c.pem\n"
            "client_tls13_ciphers = TLS_AES_128_GCM_SHA256\nserver_tls13_ciphers = TLS_AES_256_GCM_SHA384\n",
        "pg.ini");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->warnings.empty());
    EXPECT_EQ(r->config.client_tls13_ciphers, "TLS_AES_128_GCM_SHA256");
    EXPECT_EQ(r->config.server_tls13_ciphers, "TLS_AES_256_GCM_SHA384");
    EXPECT_EQ(Config{}.client_tls13_ciphers, "");
}

TEST(TlsSettings, InvalidModeRefuses) {
    const std::string msg = refusal("client_tls_sslmode = on\n");
    EXPECT_NE(msg.find("pg.ini:3: invalid value 'on' for client_tls_sslmode"), std::string::npos) << msg;
}

}  // namespace
}  // namespace poolguard::config
