// Owns the sans-I/O TLS decisions of a client's startup phase: direct TLS or a startup packet, the answer to
// SSLRequest / GSSENCRequest, and whether a plain client may log in under client_tls_sslmode.
#pragma once

#include <string_view>

namespace poolguard::protocol::pg {

// client_tls_sslmode, as PgBouncer defines it.
enum class ClientTlsMode { kDisable, kAllow, kPrefer, kRequire, kVerifyCa, kVerifyFull };
ClientTlsMode parse_client_tls_mode(std::string_view mode);  // unknown text: kDisable

// The first byte of a connection: a TLS handshake record (0x16, PostgreSQL 17's sslnegotiation=direct) or
// the length of a startup-phase packet (its first byte is 0 for every valid length).
enum class FirstBytes { kNeedMore, kTlsHandshake, kStartupPacket };
FirstBytes classify_first_bytes(std::string_view bytes);

// What to answer an SSLRequest: 'S' and a handshake, 'N' and continue in plain text, or refuse the
// connection because bytes followed the request before the answer (they would otherwise be taken as part
// of the TLS session or the startup: the CVE-2021-3935 class).
enum class SslRequestAnswer { kAcceptTls, kDecline, kRejectInjected };
SslRequestAnswer answer_ssl_request(bool tls_configured, bool bytes_follow);

// GSSAPI encryption is never offered: always 'N' (unless bytes follow, which is refused like SSLRequest).
SslRequestAnswer answer_gssenc_request(bool bytes_follow);

// Whether a client may log in (or use the admin console) over the connection as it is.
bool plain_client_allowed(ClientTlsMode mode);
// A client certificate is required and verified.
bool client_certificate_required(ClientTlsMode mode);

}  // namespace poolguard::protocol::pg
