// Tests the sans-I/O TLS decisions of the startup phase: direct TLS detection, SSLRequest/GSSENCRequest
// answers (injected bytes refused) and which client_tls_sslmode values admit plain clients.
#include "protocol/pg/tls_negotiation.h"

#include <gtest/gtest.h>

#include <string>

#include "protocol/pg/messages.h"

namespace poolguard::protocol::pg {
namespace {

TEST(TlsNegotiation, FirstByteTellsDirectTlsFromAStartupPacket) {
    EXPECT_EQ(classify_first_bytes(""), FirstBytes::kNeedMore);
    EXPECT_EQ(classify_first_bytes(std::string("\x16\x03\x01\x02\x00", 5)), FirstBytes::kTlsHandshake);
    // SSLRequest and StartupMessage lengths start with a zero byte.
    EXPECT_EQ(classify_first_bytes(std::string("\x00\x00\x00\x08\x04\xd2\x16\x2f", 8)),
              FirstBytes::kStartupPacket);
    std::string startup;
    append_startup(startup, {{"user", "app"}});
    EXPECT_EQ(classify_first_bytes(startup), FirstBytes::kStartupPacket);
}

TEST(TlsNegotiation, SslRequestAnswer) {
    EXPECT_EQ(answer_ssl_request(true, false), SslRequestAnswer::kAcceptTls);
    EXPECT_EQ(answer_ssl_request(false, false), SslRequestAnswer::kDecline);
    // CVE-2021-3935 class: anything already sent after the request is refused, TLS or not.
    EXPECT_EQ(answer_ssl_request(true, true), SslRequestAnswer::kRejectInjected);
    EXPECT_EQ(answer_ssl_request(false, true), SslRequestAnswer::kRejectInjected);
    EXPECT_EQ(answer_gssenc_request(false), SslRequestAnswer::kDecline);
    EXPECT_EQ(answer_gssenc_request(true), SslRequestAnswer::kRejectInjected);
}

TEST(TlsNegotiation, ModesThatAdmitPlainClients) {
    EXPECT_TRUE(plain_client_allowed(parse_client_tls_mode("disable")));
    EXPECT_TRUE(plain_client_allowed(parse_client_tls_mode("allow")));
    EXPECT_TRUE(plain_client_allowed(parse_client_tls_mode("prefer")));
    EXPECT_FALSE(plain_client_allowed(parse_client_tls_mode("require")));
    EXPECT_FALSE(plain_client_allowed(parse_client_tls_mode("verify-ca")));
    EXPECT_FALSE(plain_client_allowed(parse_client_tls_mode("verify-full")));
    EXPECT_FALSE(client_certificate_required(parse_client_tls_mode("require")));
    EXPECT_TRUE(client_certificate_required(parse_client_tls_mode("verify-ca")));
    EXPECT_TRUE(client_certificate_required(parse_client_tls_mode("verify-full")));
    EXPECT_EQ(parse_client_tls_mode("bogus"), ClientTlsMode::kDisable);
}

}  // namespace
}  // namespace poolguard::protocol::pg
