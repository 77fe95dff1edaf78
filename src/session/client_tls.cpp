// Owns ClientSession's TLS: direct TLS (a ClientHello first), the answer to SSLRequest and GSSENCRequest,
// the handshake within client_login_timeout, and refusing plain clients where client_tls_sslmode requires
// TLS.
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include "common/tls_counters.h"
#include "protocol/pg/tls_negotiation.h"
#include "session/client_session.h"
#include "session/proxy.h"
#include "session/session_helpers.h"

namespace poolguard::session {

namespace pg = protocol::pg;
using detail::fatal;

namespace {
constexpr const char* kInjected = "received unencrypted data after SSL request";
}

asio::awaitable<Status> ClientSession::client_handshake(bool direct) {
    const net::TlsContextPtr ctx = proxy_.client_tls();
    const auto started = std::chrono::steady_clock::now();
    std::string no_host;
    auto st = co_await net::tls_handshake(socket_, *ctx, true, no_host, direct);
    tls_handshake_done("client", st.has_value(), std::chrono::steady_clock::now() - started);
    if (!st) {
        if (proxy_.config().log_pooler_errors)
            spdlog::warn("C-{}: {}:{} {}", id_, peer_, peer_port_, st.error().message);
        co_return fail(st.error().message);
    }
    client_cert_name_ = net::peer_common_name(socket_);
    co_return Status{};
}

asio::awaitable<Status> ClientSession::maybe_direct_tls() {
    if (!proxy_.client_tls()) co_return Status{};
    // Only the first byte tells a TLS ClientHello from a startup packet's length: peek at it.
    auto [wec] = co_await socket_.socket().async_wait(asio::socket_base::wait_read, net::use_nothrow);
    if (wec || !socket_.is_open()) co_return fail("");
    char first = 0;
    const ssize_t n = ::recv(socket_.native_handle(), &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0) co_return Status{};  // the startup read sees the end of file or error
    if (pg::classify_first_bytes(std::string_view(&first, 1)) != pg::FirstBytes::kTlsHandshake)
        co_return Status{};
    co_return co_await client_handshake(true);
}

asio::awaitable<Status> ClientSession::answer_encryption_request(bool gss) {
    if (socket_.is_tls()) {
        queue_error(fatal(sqlstate::kProtocolViolation, "SSL request inside an encrypted connection"));
        co_await flush_client_out();
        co_return fail("SSL request inside an encrypted connection");
    }
    // Whatever the client sent after the request, before our answer, must not become part of the session.
    const bool bytes_follow = net::has_pending_input(socket_.socket());
    const auto answer = gss ? pg::answer_gssenc_request(bytes_follow)
                            : pg::answer_ssl_request(proxy_.client_tls() != nullptr, bytes_follow);
    if (answer == pg::SslRequestAnswer::kRejectInjected) {
        queue_error(fatal(sqlstate::kProtocolViolation, kInjected));
        co_await flush_client_out();
        if (proxy_.config().log_pooler_errors)
            spdlog::warn("C-{}: {}:{} pooler error: {}", id_, peer_, peer_port_, kInjected);
        co_return fail(kInjected);
    }
    const char reply = answer == pg::SslRequestAnswer::kAcceptTls ? 'S' : 'N';
    auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(&reply, 1), net::use_nothrow);
    if (ec) co_return fail("");
    if (reply == 'N') co_return Status{};
    co_return co_await client_handshake(false);
}

Status ClientSession::check_client_tls() {
    const auto mode = pg::parse_client_tls_mode(proxy_.config().client_tls_sslmode);
    if (socket_.is_tls() || pg::plain_client_allowed(mode)) return Status{};
    if (proxy_.config().log_pooler_errors)
        spdlog::warn("C-{}: {}/{}@{}:{} pooler error: SSL required", id_, database_, user_, peer_,
                     peer_port_);
    queue_error(fatal(sqlstate::kProtocolViolation, "SSL required"));
    return fail("SSL required");
}

}  // namespace poolguard::session
