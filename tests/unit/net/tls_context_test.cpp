// Tests TLS contexts built from the client_tls_* / server_tls_* settings (errors name the setting) and
// net::Stream over TLS on a socket pair: handshake with verify-full, asio reads and writes, the non-blocking
// fast paths, a large transfer through partial writes, and a host name that does not verify.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "net/fast_write.h"
#include "net/tls_context.h"

namespace poolguard::net {
namespace {

namespace fs = std::filesystem;

// A throwaway CA and a certificate for 127.0.0.1 / localhost signed by it, made with the openssl tool once.
struct Pki {
    fs::path dir;
    Pki() {
        dir = fs::temp_directory_path() / ("poolguard_tls_unit_" + std::to_string(::getpid()));
        fs::create_directories(dir);
        const std::string d = dir.string();
        const std::string cmd =
            "(cd " + d +
            " && openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout "
            "ca.key"
            " -out ca.crt -days 2 -subj /CN=unit-ca -addext basicConstraints=critical,CA:TRUE"
            " -addext keyUsage=critical,keyCertSign,cRLSign"
            " && openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout srv.key"
            " -out srv.csr -subj /CN=localhost"
            " && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > srv.ext"
            " && openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -set_serial 7 -days 2"
            " -extfile srv.ext -out srv.crt"
            " && openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -keyout app.key"
            " -out app.csr -subj /CN=app"
            " && openssl x509 -req -in app.csr -CA ca.crt -CAkey ca.key -set_serial 8 -days 2 -out app.crt"
            ") >/dev/null 2>&1";
        ok = std::system(cmd.c_str()) == 0;
    }
    ~Pki() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    std::string file(const char* name) const { return (dir / name).string(); }
    bool ok = false;
};

const Pki& pki() {
    static Pki p;
    return p;
}

config::Config tls_config(const std::string& client_mode, const std::string& server_mode) {
    const Pki& p = pki();
    config::Config cfg;
    cfg.client_tls_sslmode = client_mode;
    cfg.client_tls_key_file = p.file("srv.key");
    cfg.client_tls_cert_file = p.file("srv.crt");
    cfg.client_tls_ca_file = p.file("ca.crt");
    cfg.server_tls_sslmode = server_mode;
    cfg.server_tls_ca_file = p.file("ca.crt");
    return cfg;
}

std::string build_error(const config::Config& cfg) {
    auto r = build_tls_contexts(cfg);
    return r ? std::string() : r.error().message;
}

TEST(TlsContext, DisableBuildsNothing) {
    auto r = build_tls_contexts(config::Config{});
    ASSERT_TRUE(r);
    EXPECT_EQ(r->client, nullptr);
    EXPECT_EQ(r->server, nullptr);
}

TEST(TlsContext, ErrorsNameTheSetting) {
    ASSERT_TRUE(pki().ok);
    config::Config cfg;
    cfg.client_tls_sslmode = "require";
    EXPECT_NE(build_error(cfg).find("client_tls_key_file"), std::string::npos) << build_error(cfg);

    cfg = tls_config("require", "disable");
    cfg.client_tls_key_file = pki().file("app.key");  // not the certificate's key
    EXPECT_NE(build_error(cfg).find("client_tls_key_file=" + pki().file("app.key")), std::string::npos)
        << build_error(cfg);

    cfg = tls_config("require", "disable");
    cfg.client_tls_cert_file = pki().file("missing.crt");
    EXPECT_NE(build_error(cfg).find("client_tls_cert_file=" + pki().file("missing.crt")), std::string::npos);

    cfg = tls_config("verify-full", "disable");
    cfg.client_tls_ca_file.clear();
    EXPECT_NE(build_error(cfg).find("client_tls_ca_file"), std::string::npos) << build_error(cfg);

    cfg = tls_config("require", "verify-full");
    cfg.server_tls_protocols = "sslv3";
    EXPECT_NE(build_error(cfg).find("server_tls_protocols"), std::string::npos) << build_error(cfg);

    cfg = tls_config("require", "require");
    cfg.client_tls13_ciphers = "NOT_A_SUITE";
    EXPECT_NE(build_error(cfg).find("client_tls13_ciphers"), std::string::npos) << build_error(cfg);

    cfg = tls_config("verify-ca", "verify-full");
    EXPECT_EQ(build_error(cfg), "");
}

// Runs a server-side (accept) and a client-side handshake against each other on a socket pair.
struct TlsPair {
    asio::io_context io{1};
    Stream server{Socket(io)};
    Stream client{Socket(io)};
    TlsContexts ctx;
    Status server_st, client_st;
    explicit TlsPair(const config::Config& cfg, const std::string& host = "127.0.0.1") {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
        server.socket().assign(asio::local::stream_protocol(), fds[0]);
        client.socket().assign(asio::local::stream_protocol(), fds[1]);
        auto built = build_tls_contexts(cfg);
        EXPECT_TRUE(built) << (built ? "" : built.error().message);
        if (built) ctx = *built;
        asio::co_spawn(
            io,
            [this]() -> asio::awaitable<void> {
                server_st = co_await tls_handshake(server, *ctx.client, true);
            },
            asio::detached);
        asio::co_spawn(
            io,
            [this, host]() -> asio::awaitable<void> {
                client_st = co_await tls_handshake(client, *ctx.server, false, host);
            },
            asio::detached);
        io.run_for(std::chrono::seconds(10));
        io.restart();
    }
};

TEST(TlsStream, HandshakeReadWriteAndLargeTransfer) {
    ASSERT_TRUE(pki().ok);
    TlsPair p(tls_config("require", "verify-full"));
    ASSERT_TRUE(p.server_st) << p.server_st.error().message;
    ASSERT_TRUE(p.client_st) << p.client_st.error().message;
    ASSERT_TRUE(p.server.is_tls());
    ASSERT_TRUE(p.client.is_tls());
    EXPECT_NE(tls_description(p.server).find("TLSv1.3/"), std::string::npos) << tls_description(p.server);
    EXPECT_EQ(server_end_point(p.server).size(), 32u);  // SHA-256 of an ecdsa-with-SHA256 certificate

    // 4 MB through the fast path (what fits now), then asio's write for the rest; the reader uses both
    // asio reads and the non-blocking read the relays use.
    std::string big(4 << 20, '\0');
    for (size_t i = 0; i < big.size(); ++i)
        big[i] = static_cast<char>(i * 131 + 7);
    std::string got;
    bool wrote = false;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
            std::array<asio::const_buffer, 2> bufs{asio::buffer(big.data(), 1000),
                                                   asio::buffer(big.data() + 1000, big.size() - 1000)};
            std::error_code ec;
            send_available(p.client, bufs, ec);
            EXPECT_FALSE(ec);
            EXPECT_GT(bytes_left(bufs), 0u) << "a socket pair cannot take 4 MB at once";
            auto [wec, n] = co_await asio::async_write(p.client, bufs, use_nothrow);
            EXPECT_FALSE(wec) << wec.message();
            wrote = true;
        },
        asio::detached);
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
            char buf[5000];
            while (got.size() < big.size()) {
                int err = 0;
                const ssize_t n = p.server.read_nonblocking(buf, sizeof buf, err);
                if (n > 0) {
                    got.append(buf, size_t(n));
                    continue;
                }
                EXPECT_EQ(err, EAGAIN);
                auto [ec, m] = co_await p.server.async_read_some(asio::buffer(buf), use_nothrow);
                if (ec) break;
                got.append(buf, m);
            }
        },
        asio::detached);
    p.io.run_for(std::chrono::seconds(20));
    EXPECT_TRUE(wrote);
    EXPECT_TRUE(got == big) << got.size();

    // End of stream: close_notify from the client reads as EOF.
    std::error_code ignored;
    p.client.shutdown(asio::socket_base::shutdown_both, ignored);
    p.client.close(ignored);
    p.io.restart();
    std::error_code eof;
    asio::co_spawn(
        p.io,
        [&]() -> asio::awaitable<void> {
            char b[16];
            auto [ec, n] = co_await p.server.async_read_some(asio::buffer(b), use_nothrow);
            eof = ec;
        },
        asio::detached);
    p.io.run_for(std::chrono::seconds(5));
    EXPECT_EQ(eof, asio::error::eof);
}

TEST(TlsStream, VerifyFullRefusesAnotherHostName) {
    ASSERT_TRUE(pki().ok);
    TlsPair p(tls_config("require", "verify-full"), "db.example.com");
    ASSERT_FALSE(p.client_st);
    EXPECT_NE(p.client_st.error().message.find("certificate verify failed"), std::string::npos)
        << p.client_st.error().message;
    EXPECT_FALSE(p.client.is_tls());
    // verify-ca checks the chain only: the same certificate is accepted.
    TlsPair q(tls_config("require", "verify-ca"), "db.example.com");
    EXPECT_TRUE(q.client_st) << q.client_st.error().message;
}

TEST(TlsStream, VerifyCaClientCertificateGivesTheCommonName) {
    ASSERT_TRUE(pki().ok);
    config::Config cfg = tls_config("verify-ca", "require");
    cfg.server_tls_key_file = pki().file("app.key");
    cfg.server_tls_cert_file = pki().file("app.crt");
    TlsPair p(cfg);
    ASSERT_TRUE(p.server_st) << p.server_st.error().message;
    EXPECT_EQ(peer_common_name(p.server), "app");
    // Without a client certificate, verify-ca fails the handshake.
    TlsPair q(tls_config("verify-ca", "require"));
    EXPECT_FALSE(q.server_st);
}

}  // namespace
}  // namespace poolguard::net
