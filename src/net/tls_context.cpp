// Owns building TLS contexts from the configuration and the handshake driver (see tls_context.h).
#include "net/tls_context.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <vector>

namespace poolguard::net {

namespace {

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    std::string out;
    while (e != 0) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
        e = ERR_get_error();
    }
    return out.empty() ? "unknown TLS error" : out;
}

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// tlsv1.0 .. tlsv1.3, all, secure, legacy; separated by commas, spaces or colons.
Status set_protocols(SSL_CTX* ctx, const std::string& setting, const std::string& value) {
    int lo = 0, hi = 0;
    auto add = [&](int v) {
        if (lo == 0 || v < lo) lo = v;
        if (v > hi) hi = v;
    };
    std::string word;
    const std::string text = lower(value) + ",";
    for (char c : text) {
        if (c != ',' && c != ' ' && c != ':' && c != '\t') {
            word += c;
            continue;
        }
        if (word.empty()) continue;
        if (word == "tlsv1.0" || word == "tlsv1")
            add(TLS1_VERSION);
        else if (word == "tlsv1.1")
            add(TLS1_1_VERSION);
        else if (word == "tlsv1.2")
            add(TLS1_2_VERSION);
        else if (word == "tlsv1.3")
            add(TLS1_3_VERSION);
        else if (word == "all" || word == "legacy") {
            add(TLS1_VERSION);
            add(TLS1_3_VERSION);
        } else if (word == "secure" || word == "default") {
            add(TLS1_2_VERSION);
            add(TLS1_3_VERSION);
        } else {
            return fail("invalid value '" + value + "' for " + setting +
                        ": expected tlsv1.0, tlsv1.1, tlsv1.2, tlsv1.3, all or secure");
        }
        word.clear();
    }
    if (lo == 0) {
        lo = TLS1_2_VERSION;
        hi = TLS1_3_VERSION;
    }
    if (lo < TLS1_2_VERSION) SSL_CTX_set_security_level(ctx, 0);  // OpenSSL 3 refuses TLS 1.0/1.1 otherwise
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    return {};
}

Status set_ciphers(SSL_CTX* ctx, const std::string& prefix, const std::string& ciphers,
                   const std::string& tls13) {
    const std::string c = lower(ciphers);
    if (c == "all") {
        if (SSL_CTX_set_cipher_list(ctx, "ALL:@SECLEVEL=0") != 1)
            return fail(prefix + "_ciphers=all: " + openssl_error());
    } else if (!c.empty() && c != "default" && c != "secure" && c != "fast" && c != "normal") {
        if (SSL_CTX_set_cipher_list(ctx, ciphers.c_str()) != 1)
            return fail("invalid value '" + ciphers + "' for " + prefix + "_ciphers: " + openssl_error());
    }
    if (!tls13.empty() && SSL_CTX_set_ciphersuites(ctx, tls13.c_str()) != 1)
        return fail("invalid value '" + tls13 + "' for " + prefix + "13_ciphers: " + openssl_error());
    return {};
}

Status load_key_pair(SSL_CTX* ctx, const std::string& prefix, const std::string& key,
                     const std::string& cert) {
    if (cert.empty() != key.empty())
        return fail(prefix + (cert.empty() ? "_cert_file" : "_key_file") + " is required with " + prefix +
                    (cert.empty() ? "_key_file" : "_cert_file"));
    if (cert.empty()) return {};
    if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1)
        return fail(prefix + "_cert_file=" + cert + ": " + openssl_error());
    if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1)
        return fail(prefix + "_key_file=" + key + ": " + openssl_error());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return fail(prefix + "_key_file=" + key + " does not match " + prefix + "_cert_file=" + cert);
    return {};
}

// Direct TLS and SSLRequest alike: a client that offers ALPN must offer "postgresql" (RFC 7301 alert
// otherwise, as PostgreSQL 17 does).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    static const unsigned char kPg[] = {'p', 'o', 's', 't', 'g', 'r', 'e', 's', 'q', 'l'};
    unsigned int i = 0;
    while (i < inlen) {
        const unsigned int len = in[i];
        if (i + 1 + len > inlen) break;
        if (len == sizeof kPg && std::memcmp(in + i + 1, kPg, sizeof kPg) == 0) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

SSL_CTX* new_ctx(bool server) {
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx) return nullptr;
    // Partial writes: the relay's fast path hands over what fits and retries the rest from the same bytes.
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    return ctx;
}

Result<TlsContextPtr> build_client_side(const config::Config& cfg) {
    const std::string& mode = cfg.client_tls_sslmode;
    if (mode == "disable") return TlsContextPtr{};
    if (cfg.client_tls_key_file.empty() || cfg.client_tls_cert_file.empty())
        return fail("client_tls_sslmode=" + mode + " needs client_tls_key_file and client_tls_cert_file");
    SSL_CTX* raw = new_ctx(true);
    if (!raw) return fail("client TLS: " + openssl_error());
    auto ctx = std::make_shared<TlsContext>(raw);
    ctx->mode = mode;
    ctx->verify_peer = mode == "verify-ca" || mode == "verify-full";
    if (auto st = set_protocols(raw, "client_tls_protocols", cfg.client_tls_protocols); !st)
        return std::unexpected(st.error());
    if (auto st = set_ciphers(raw, "client_tls", cfg.client_tls_ciphers, cfg.client_tls13_ciphers); !st)
        return std::unexpected(st.error());
    if (auto st = load_key_pair(raw, "client_tls", cfg.client_tls_key_file, cfg.client_tls_cert_file); !st)
        return std::unexpected(st.error());
    const std::string curve = lower(cfg.client_tls_ecdhcurve);
    if (!curve.empty() && curve != "auto" && curve != "none" &&
        SSL_CTX_set1_groups_list(raw, cfg.client_tls_ecdhcurve.c_str()) != 1)
        return fail("invalid value '" + cfg.client_tls_ecdhcurve +
                    "' for client_tls_ecdhcurve: " + openssl_error());
    const std::string dh = lower(cfg.client_tls_dheparams);
    if (dh == "auto" || dh == "legacy")
        SSL_CTX_set_dh_auto(raw, 1);
    else if (dh != "none" && !dh.empty())
        return fail("invalid value '" + cfg.client_tls_dheparams +
                    "' for client_tls_dheparams: expected none, auto or legacy");
    if (!cfg.client_tls_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(raw, cfg.client_tls_ca_file.c_str(), nullptr) != 1)
            return fail("client_tls_ca_file=" + cfg.client_tls_ca_file + ": " + openssl_error());
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(cfg.client_tls_ca_file.c_str());
        if (names) SSL_CTX_set_client_CA_list(raw, names);
    } else if (ctx->verify_peer) {
        return fail("client_tls_sslmode=" + mode + " needs client_tls_ca_file to verify client certificates");
    }
    SSL_CTX_set_verify(
        raw, ctx->verify_peer ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT : SSL_VERIFY_NONE, nullptr);
    static const unsigned char kSid[] = "poolguard";
    SSL_CTX_set_session_id_context(raw, kSid, sizeof kSid - 1);
    SSL_CTX_set_alpn_select_cb(raw, &select_alpn, nullptr);
    return TlsContextPtr(ctx);
}

Result<TlsContextPtr> build_server_side(const config::Config& cfg) {
    const std::string& mode = cfg.server_tls_sslmode;
    if (mode == "disable") return TlsContextPtr{};
    SSL_CTX* raw = new_ctx(false);
    if (!raw) return fail("server TLS: " + openssl_error());
    auto ctx = std::make_shared<TlsContext>(raw);
    ctx->mode = mode;
    ctx->verify_peer = mode == "verify-ca" || mode == "verify-full";
    ctx->verify_host = mode == "verify-full";
    if (auto st = set_protocols(raw, "server_tls_protocols", cfg.server_tls_protocols); !st)
        return std::unexpected(st.error());
    if (auto st = set_ciphers(raw, "server_tls", cfg.server_tls_ciphers, cfg.server_tls13_ciphers); !st)
        return std::unexpected(st.error());
    if (auto st = load_key_pair(raw, "server_tls", cfg.server_tls_key_file, cfg.server_tls_cert_file); !st)
        return std::unexpected(st.error());
    if (!cfg.server_tls_ca_file.empty()) {
        if (SSL_CTX_load_verify_locations(raw, cfg.server_tls_ca_file.c_str(), nullptr) != 1)
            return fail("server_tls_ca_file=" + cfg.server_tls_ca_file + ": " + openssl_error());
    } else if (ctx->verify_peer) {
        if (SSL_CTX_set_default_verify_paths(raw) != 1)
            return fail("server_tls_sslmode=" + mode + ": no server_tls_ca_file and no system CA store");
    }
    SSL_CTX_set_verify(raw, ctx->verify_peer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    return TlsContextPtr(ctx);
}

bool is_ip_address(const std::string& host) {
    unsigned char buf[16];
    return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

Result<TlsContexts> build_tls_contexts(const config::Config& cfg) {
    TlsContexts out;
    auto client = build_client_side(cfg);
    if (!client) return std::unexpected(client.error());
    auto server = build_server_side(cfg);
    if (!server) return std::unexpected(server.error());
    out.client = std::move(*client);
    out.server = std::move(*server);
    return out;
}

std::string server_tls_fingerprint(const config::Config& cfg) {
    std::string s;
    for (const std::string* v : {&cfg.server_tls_sslmode, &cfg.server_tls_ca_file, &cfg.server_tls_key_file,
                                 &cfg.server_tls_cert_file, &cfg.server_tls_protocols,
                                 &cfg.server_tls_ciphers, &cfg.server_tls13_ciphers}) {
        s += *v;
        s += '\0';
    }
    return s;
}

asio::awaitable<Status> tls_handshake(Stream& stream, const TlsContext& ctx, bool accept, std::string host,
                                      bool direct) {
    Socket& socket = stream.socket();
    std::error_code ec;
    socket.non_blocking(true, ec);
    if (ec) co_return fail("TLS handshake: " + ec.message());
    SslPtr ssl(SSL_new(ctx.get()));
    if (!ssl || SSL_set_fd(ssl.get(), static_cast<int>(socket.native_handle())) != 1)
        co_return fail("TLS handshake: " + openssl_error());
    if (accept) {
        SSL_set_accept_state(ssl.get());
    } else {
        SSL_set_connect_state(ssl.get());
        const bool ip = is_ip_address(host);
        if (!host.empty() && !ip) SSL_set_tlsext_host_name(ssl.get(), host.c_str());
        if (ctx.verify_host) {
            X509_VERIFY_PARAM* param = SSL_get0_param(ssl.get());
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            const int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str())
                              : X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
            if (ok != 1) co_return fail("TLS handshake: cannot verify host name '" + host + "'");
        }
    }
    ERR_clear_error();
    while (true) {
        const int r = SSL_do_handshake(ssl.get());
        if (r == 1) break;
        const int e = SSL_get_error(ssl.get(), r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            auto [wec] = co_await socket.async_wait(
                e == SSL_ERROR_WANT_READ ? Socket::wait_read : Socket::wait_write, use_nothrow);
            if (wec || !socket.is_open()) co_return fail("TLS handshake did not finish");
            continue;
        }
        std::string why;
        if (!accept) {
            const long v = SSL_get_verify_result(ssl.get());
            if (v != X509_V_OK)
                why = std::string("certificate verify failed: ") + X509_verify_cert_error_string(v);
        }
        if (why.empty())
            why = e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0 ? "peer closed the connection"
                                                                  : openssl_error();
        ERR_clear_error();
        co_return fail("TLS handshake failed: " + why);
    }
    if (direct) {
        const unsigned char* alpn = nullptr;
        unsigned int alpn_len = 0;
        SSL_get0_alpn_selected(ssl.get(), &alpn, &alpn_len);
        if (alpn_len == 0) co_return fail("direct TLS connection without ALPN \"postgresql\"");
    }
    stream.attach_tls(std::move(ssl));
    co_return Status{};
}

std::string tls_description(const Stream& stream) {
    if (!stream.is_tls()) return {};
    SSL* ssl = stream.ssl();
    return std::string(SSL_get_version(ssl)) + "/" + SSL_get_cipher_name(ssl);
}

std::string peer_common_name(const Stream& stream) {
    if (!stream.is_tls()) return {};
    X509* cert = SSL_get0_peer_certificate(stream.ssl());
    if (!cert || SSL_get_verify_result(stream.ssl()) != X509_V_OK) return {};
    X509_NAME* name = X509_get_subject_name(cert);
    const int idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (idx < 0) return {};
    ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    unsigned char* utf8 = nullptr;
    const int len = ASN1_STRING_to_UTF8(&utf8, data);
    if (len < 0) return {};
    std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
    OPENSSL_free(utf8);
    if (out.find('\0') != std::string::npos) return {};
    return out;
}

std::string server_end_point(const Stream& stream) {
    if (!stream.is_tls()) return {};
    X509* cert = SSL_get_certificate(stream.ssl());
    if (!cert) return {};
    // RFC 5929 4.1: the certificate's signature hash, SHA-256 for MD5 and SHA-1.
    int md_nid = NID_undef, pk_nid = NID_undef;
    if (X509_get_signature_info(cert, &md_nid, &pk_nid, nullptr, nullptr) != 1) return {};
    const EVP_MD* md = nullptr;
    if (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_undef)
        md = EVP_sha256();
    else
        md = EVP_get_digestbynid(md_nid);
    if (!md) return {};
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (X509_digest(cert, md, buf, &len) != 1) return {};
    return std::string(reinterpret_cast<char*>(buf), len);
}

}  // namespace poolguard::net
