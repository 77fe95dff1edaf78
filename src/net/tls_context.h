// Owns the TLS contexts built from the client_tls_* / server_tls_* settings and the TLS handshake driver.
#pragma once

#include <openssl/ssl.h>

#include <asio.hpp>
#include <memory>
#include <string>

#include "common/error.h"
#include "config/config.h"
#include "net/stream.h"

namespace poolguard::net {

// One SSL_CTX plus what a connection needs to know about how it was configured. Sessions keep the
// shared_ptr they started with: a reload builds a new context for new connections only.
class TlsContext {
  public:
    explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
    ~TlsContext() { SSL_CTX_free(ctx_); }
    TlsContext(const TlsContext&) = delete;
    TlsContext& operator=(const TlsContext&) = delete;
    SSL_CTX* get() const { return ctx_; }

    std::string mode;          // the *_tls_sslmode value
    bool verify_peer = false;  // verify-ca / verify-full
    bool verify_host = false;  // verify-full (server side: the host name of each server)

  private:
    SSL_CTX* ctx_;
};
using TlsContextPtr = std::shared_ptr<const TlsContext>;

// Contexts for both sides; null where the mode is disable (server side: also where plain TCP is enough).
struct TlsContexts {
    TlsContextPtr client;  // poolguard as TLS server, for clients
    TlsContextPtr server;  // poolguard as TLS client, for PostgreSQL servers
};

// Builds the contexts from the configuration (reads key, certificate and CA files). An error names the
// setting, for start and reload to refuse the configuration with.
Result<TlsContexts> build_tls_contexts(const config::Config& cfg);

// The server-side TLS settings as one comparable string (a change closes idle server connections).
std::string server_tls_fingerprint(const config::Config& cfg);

// Runs the TLS handshake on `stream`'s socket (accept when `accept`, else connect to `host` for SNI and
// verify-full). On success the stream is TLS from then on. Bounded by whoever closes the socket on a
// timeout (client_login_timeout / server_connect_timeout). `direct`: a direct-TLS client, which must
// negotiate ALPN "postgresql".
asio::awaitable<Status> tls_handshake(Stream& stream, const TlsContext& ctx, bool accept,
                                      std::string host = {}, bool direct = false);

// "TLSv1.3/TLS_AES_256_GCM_SHA384" for SHOW CLIENTS/SERVERS, "" when plain.
std::string tls_description(const Stream& stream);
// The common name of the peer's verified certificate ("" without one).
std::string peer_common_name(const Stream& stream);
// tls-server-end-point channel binding data: the hash of our own certificate (RFC 5929), "" if none.
std::string server_end_point(const Stream& stream);

}  // namespace poolguard::net
