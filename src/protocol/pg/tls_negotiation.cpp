// Owns the sans-I/O TLS decisions of a client's startup phase (see tls_negotiation.h).
#include "protocol/pg/tls_negotiation.h"

namespace poolguard::protocol::pg {

ClientTlsMode parse_client_tls_mode(std::string_view mode) {
    if (mode == "allow") return ClientTlsMode::kAllow;
    if (mode == "prefer") return ClientTlsMode::kPrefer;
    if (mode == "require") return ClientTlsMode::kRequire;
    if (mode == "verify-ca") return ClientTlsMode::kVerifyCa;
    if (mode == "verify-full") return ClientTlsMode::kVerifyFull;
    return ClientTlsMode::kDisable;
}

FirstBytes classify_first_bytes(std::string_view bytes) {
    if (bytes.empty()) return FirstBytes::kNeedMore;
    return static_cast<unsigned char>(bytes[0]) == 0x16 ? FirstBytes::kTlsHandshake
                                                        : FirstBytes::kStartupPacket;
}

SslRequestAnswer answer_ssl_request(bool tls_configured, bool bytes_follow) {
    if (bytes_follow) return SslRequestAnswer::kRejectInjected;
    return tls_configured ? SslRequestAnswer::kAcceptTls : SslRequestAnswer::kDecline;
}

SslRequestAnswer answer_gssenc_request(bool bytes_follow) {
    return bytes_follow ? SslRequestAnswer::kRejectInjected : SslRequestAnswer::kDecline;
}

bool plain_client_allowed(ClientTlsMode mode) {
    return mode == ClientTlsMode::kDisable || mode == ClientTlsMode::kAllow || mode == ClientTlsMode::kPrefer;
}

bool client_certificate_required(ClientTlsMode mode) {
    return mode == ClientTlsMode::kVerifyCa || mode == ClientTlsMode::kVerifyFull;
}

}  // namespace poolguard::protocol::pg
