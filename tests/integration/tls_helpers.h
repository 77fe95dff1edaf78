// Owns the TLS tests' shared helpers: throwaway certificates made with openssl (Pki), raw byte exchanges, a
// raw TLS client (SSLRequest or direct TLS with ALPN) and reading the certificate a libpq connection got.
#pragma once

#include <libpq-fe.h>
#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "fixtures.h"
#include "pg_client.h"

namespace itest {

// A CA (ca.crt), PostgreSQL's certificate (pg: IP 127.0.0.1 only, so "localhost" does not verify), the
// pooler's (pooler: CN localhost, IP 127.0.0.1 and DNS localhost), a client certificate with CN=app (app) and
// a second, unrelated CA (ca2.crt); world-readable directory, keys owned by postgres when running as root.
struct Pki {
    std::string dir;
    bool ok = false;
    explicit Pki(const std::string& tag = "tls");
    ~Pki();
    Pki(const Pki&) = delete;
    Pki& operator=(const Pki&) = delete;
    std::string operator()(const std::string& file) const { return dir + "/" + file; }

    // Makes <name>.key and <name>.crt signed by ca.crt (CN `cn`, extension line `ext`, serial `serial`).
    bool issue(const std::string& name, const std::string& cn, const std::string& ext, long serial);
};

// A suite against one PostgreSQL with ssl=on: the suite's certificates (pki_, tag `tag`) are made before
// the server starts with them and removed after it; `extra_files` adds settings naming files of pki_
// ({"ssl_ca_file", "ca.crt"}) and `options` sets the rest (HBA lines). Each test checks that openssl made
// the certificates.
class TlsPoolerTest : public PoolerTest {
  protected:
    static void start_tls_server(const std::string& tag, TempPostgresOptions options,
                                 const std::vector<std::pair<std::string, std::string>>& extra_files = {});
    static void TearDownTestSuite();
    void SetUp() override;
    // Clients: `client_mode` with the pooler's certificate and the test CA; servers: verify-full against it.
    static void set_tls(PoolerConfig& c, const std::string& client_mode);

    static Pki* pki_;
};

// The extension line of the pooler's certificate (for issuing rotated ones).
inline const std::string kPoolerCertExt = "subjectAltName=IP:127.0.0.1,DNS:localhost";

// A raw TCP connection to 127.0.0.1:port: sends `bytes`, returns what comes back until EOF or `want` bytes
// (bounded by 5 s).
std::string raw_exchange(int port, const std::string& bytes, size_t want = SIZE_MAX);
std::string be32(uint32_t v);
inline const std::string kSslRequest = be32(8) + be32(80877103);
inline const std::string kGssEncRequest = be32(8) + be32(80877104);
// StartupMessage user=app database=db.
std::string startup_packet();

// The serial number of the certificate the peer of a libpq TLS connection presented; -1 without one.
long peer_certificate_serial(PGconn* conn);

// A blocking TCP connection to 127.0.0.1 that can turn into TLS (OpenSSL client): after SSLRequest, or
// directly (PostgreSQL 17's sslnegotiation=direct). Every read and write is bounded by `timeout`.
class TlsRawConn {
  public:
    TlsRawConn() = default;
    ~TlsRawConn() { close(); }
    TlsRawConn(const TlsRawConn&) = delete;
    TlsRawConn& operator=(const TlsRawConn&) = delete;

    bool connect(int port, std::chrono::milliseconds timeout = 5s);
    // Sends SSLRequest; the answer byte ('S' or 'N'), 0 on EOF/error.
    char ssl_request();
    // TLS handshake verifying the peer against `ca_file` (and IP 127.0.0.1); `alpn` protocols offered (none
    // when empty). False with the reason in error().
    bool handshake(const std::string& ca_file, const std::vector<std::string>& alpn = {});
    bool send(const std::string& bytes);
    // Next backend message; nullopt on EOF, timeout or error.
    std::optional<BackendMessage> read_message();
    // Reads until StartupMessage's login ends: ReadyForQuery (true) or ErrorResponse/EOF (false, error()).
    // Records BackendKeyData.
    bool login(const std::string& user, const std::string& database);
    // Simple query up to ReadyForQuery: the rows' first values; an ErrorResponse's fields in last_error.
    std::vector<std::string> query(const std::string& sql);
    // True when the peer closed (EOF or reset) within the timeout.
    bool wait_closed();
    void close();

    SSL* ssl() const { return ssl_; }
    const std::string& error() const { return error_; }
    const ErrorFields& last_error() const { return last_error_; }
    int32_t backend_pid() const { return pid_; }
    int32_t backend_key() const { return key_; }
    // The negotiated ALPN protocol ("" without one).
    std::string alpn() const;

  private:
    bool read_exact(char* out, size_t n);

    int fd_ = -1;
    SSL_CTX* ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    std::chrono::milliseconds timeout_{5000};
    std::string error_;
    ErrorFields last_error_;
    int32_t pid_ = 0;
    int32_t key_ = 0;
};

// CancelRequest bytes for (pid, key).
std::string cancel_request(int32_t pid, int32_t key);

}  // namespace itest
