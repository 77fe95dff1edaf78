// Owns the TLS tests' shared helpers (see tls_helpers.h): openssl-made certificates, raw TLS client.
#include "tls_helpers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace itest {

namespace fs = std::filesystem;

namespace {

std::string cert_command(const std::string& name, const std::string& cn, const std::string& ext,
                         long serial) {
    return " && openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout " + name +
           ".key -out " + name + ".csr -subj /CN=" + cn + " && printf '" + ext + "\\n' > " + name +
           ".ext && openssl x509 -req -in " + name + ".csr -CA ca.crt -CAkey ca.key -set_serial " +
           std::to_string(serial) + " -days 2 -extfile " + name + ".ext -out " + name + ".crt";
}

std::string ca_command(const std::string& name, const std::string& cn) {
    return " && openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout " +
           name + ".key -out " + name + ".crt -days 2 -subj /CN=" + cn +
           " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
}

bool run_in(const std::string& dir, const std::string& steps) {
    std::string cmd =
        "(cd " + dir + " && true" + steps + " && chmod 755 . && chmod 600 *.key && chmod 644 *.crt";
    if (::geteuid() == 0) cmd += " && chown -R postgres " + dir;
    cmd += ") >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

}  // namespace

Pki::Pki(const std::string& tag) {
    dir = (fs::temp_directory_path() / ("poolguard_" + tag + "_it_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
    ok = run_in(dir, ca_command("ca", "it-ca") + ca_command("ca2", "other-ca") +
                         cert_command("pg", "pg", "subjectAltName=IP:127.0.0.1", 102) +
                         cert_command("pooler", "localhost", kPoolerCertExt, 115) +
                         cert_command("app", "app", "extendedKeyUsage=clientAuth", 106));
}

Pki::~Pki() {
    std::error_code ec;
    fs::remove_all(dir, ec);
}

bool Pki::issue(const std::string& name, const std::string& cn, const std::string& ext, long serial) {
    return run_in(dir, cert_command(name, cn, ext, serial));
}

std::string raw_exchange(int port, const std::string& bytes, size_t want) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, bytes.data(), bytes.size(), 0) == static_cast<ssize_t>(bytes.size())) {
        char buf[512];
        ssize_t n;
        while (out.size() < want && (n = ::recv(fd, buf, std::min(sizeof buf, want - out.size()), 0)) > 0)
            out.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return out;
}

std::string be32(uint32_t v) {
    v = htonl(v);
    return std::string(reinterpret_cast<char*>(&v), 4);
}

std::string startup_packet() {
    std::string body = be32(196608) + std::string("user\0app\0database\0db\0\0", 22);
    return be32(static_cast<uint32_t>(body.size() + 4)) + body;
}

std::string cancel_request(int32_t pid, int32_t key) {
    return be32(16) + be32(80877102) + be32(static_cast<uint32_t>(pid)) + be32(static_cast<uint32_t>(key));
}

long peer_certificate_serial(PGconn* conn) {
    auto* ssl = static_cast<SSL*>(PQsslStruct(conn, "OpenSSL"));
    if (!ssl) return -1;
    X509* cert = SSL_get0_peer_certificate(ssl);
    if (!cert) return -1;
    return ASN1_INTEGER_get(X509_get0_serialNumber(cert));
}

// ---- TlsRawConn ------------------------------------------------------------------------------------------

bool TlsRawConn::connect(int port, std::chrono::milliseconds timeout) {
    close();
    ::signal(SIGPIPE, SIG_IGN);  // SSL_write to a peer that closed must fail, not end the test process
    timeout_ = timeout;
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        error_ = "connect failed";
        return false;
    }
    return true;
}

char TlsRawConn::ssl_request() {
    if (!send(kSslRequest)) return 0;
    char c = 0;
    return read_exact(&c, 1) ? c : 0;
}

bool TlsRawConn::handshake(const std::string& ca_file, const std::vector<std::string>& alpn) {
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (!ctx_) return false;
    SSL_CTX_load_verify_locations(ctx_, ca_file.c_str(), nullptr);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    ssl_ = SSL_new(ctx_);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), "127.0.0.1");
    if (!alpn.empty()) {
        std::string wire;
        for (const auto& p : alpn)
            wire += static_cast<char>(p.size()) + p;
        SSL_set_alpn_protos(ssl_, reinterpret_cast<const unsigned char*>(wire.data()),
                            static_cast<unsigned>(wire.size()));
    }
    SSL_set_fd(ssl_, fd_);
    ERR_clear_error();
    if (SSL_connect(ssl_) != 1) {
        char buf[256] = "handshake failed (EOF or timeout)";
        if (unsigned long e = ERR_get_error(); e != 0) ERR_error_string_n(e, buf, sizeof buf);
        error_ = buf;
        SSL_free(ssl_);
        ssl_ = nullptr;
        return false;
    }
    return true;
}

bool TlsRawConn::send(const std::string& bytes) {
    if (fd_ < 0) return false;
    if (ssl_)
        return SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size())) ==
               static_cast<int>(bytes.size());
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

bool TlsRawConn::read_exact(char* out, size_t n) {
    size_t got = 0;
    while (got < n) {
        const int r = ssl_ ? SSL_read(ssl_, out + got, static_cast<int>(n - got))
                           : static_cast<int>(::recv(fd_, out + got, n - got, 0));
        if (r <= 0) return false;
        got += static_cast<size_t>(r);
    }
    return true;
}

std::optional<BackendMessage> TlsRawConn::read_message() {
    char header[5];
    if (!read_exact(header, 5)) return std::nullopt;
    uint32_t len = 0;
    std::memcpy(&len, header + 1, 4);
    len = ntohl(len);
    if (len < 4 || len > (1u << 24)) return std::nullopt;
    BackendMessage m;
    m.type = header[0];
    m.payload.resize(len - 4);
    if (!read_exact(m.payload.data(), m.payload.size())) return std::nullopt;
    return m;
}

bool TlsRawConn::login(const std::string& user, const std::string& database) {
    if (!send(RawConn::startup_packet({{"user", user}, {"database", database}}))) {
        error_ = "send failed";
        return false;
    }
    while (auto m = read_message()) {
        if (m->type == 'K' && m->payload.size() >= 8) {
            uint32_t v[2];
            std::memcpy(v, m->payload.data(), 8);
            pid_ = static_cast<int32_t>(ntohl(v[0]));
            key_ = static_cast<int32_t>(ntohl(v[1]));
        } else if (m->type == 'E') {
            last_error_ = parse_error_fields(m->payload);
            error_ = last_error_.sqlstate + " " + last_error_.message;
            return false;
        } else if (m->type == 'Z') {
            return true;
        }
    }
    error_ = "connection closed during login";
    return false;
}

std::vector<std::string> TlsRawConn::query(const std::string& sql) {
    std::vector<std::string> values;
    last_error_ = {};
    if (!send(RawConn::message('Q', sql + std::string(1, '\0')))) return values;
    while (auto m = read_message()) {
        if (m->type == 'D' && m->payload.size() >= 6) {
            uint32_t n = 0;
            std::memcpy(&n, m->payload.data() + 2, 4);
            n = ntohl(n);
            values.push_back(n == 0xffffffffu ? "" : m->payload.substr(6, n));
        } else if (m->type == 'E') {
            last_error_ = parse_error_fields(m->payload);
        } else if (m->type == 'Z') {
            break;
        }
    }
    return values;
}

bool TlsRawConn::wait_closed() {
    char buf[256];
    while (true) {
        const int r =
            ssl_ ? SSL_read(ssl_, buf, sizeof buf) : static_cast<int>(::recv(fd_, buf, sizeof buf, 0));
        if (r > 0) continue;
        if (r == 0) return true;
        return errno != EAGAIN && errno != EWOULDBLOCK;
    }
}

std::string TlsRawConn::alpn() const {
    if (!ssl_) return {};
    const unsigned char* p = nullptr;
    unsigned int n = 0;
    SSL_get0_alpn_selected(ssl_, &p, &n);
    return std::string(reinterpret_cast<const char*>(p), n);
}

void TlsRawConn::close() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
    ssl_ = nullptr;
    ctx_ = nullptr;
    fd_ = -1;
}

Pki* TlsPoolerTest::pki_ = nullptr;

void TlsPoolerTest::start_tls_server(const std::string& tag, TempPostgresOptions options,
                                     const std::vector<std::pair<std::string, std::string>>& extra_files) {
    pki_ = new Pki(tag);
    options.settings = {"ssl=on", "ssl_cert_file=" + (*pki_)("pg.crt"), "ssl_key_file=" + (*pki_)("pg.key")};
    for (const auto& [setting, file] : extra_files)
        options.settings.push_back(setting + "=" + (*pki_)(file));
    start_server(options);
}

void TlsPoolerTest::TearDownTestSuite() {
    PoolerTest::TearDownTestSuite();
    delete pki_;
    pki_ = nullptr;
}

void TlsPoolerTest::set_tls(PoolerConfig& c, const std::string& client_mode) {
    c.set("client_tls_sslmode", client_mode);
    c.set("client_tls_key_file", (*pki_)("pooler.key"));
    c.set("client_tls_cert_file", (*pki_)("pooler.crt"));
    c.set("client_tls_ca_file", (*pki_)("ca.crt"));
    c.set("server_tls_sslmode", "verify-full");
    c.set("server_tls_ca_file", (*pki_)("ca.crt"));
}

void TlsPoolerTest::SetUp() {
    PoolerTest::SetUp();
    ASSERT_TRUE(pki_->ok) << "openssl could not make the test certificates";
}

}  // namespace itest
