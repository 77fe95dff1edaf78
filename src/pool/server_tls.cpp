// Owns ServerConnection's TLS negotiation with PostgreSQL (server_tls_sslmode): SSLRequest, the answer, the
// handshake with certificate and host name checks, or plain TCP where the mode allows it.
#include <spdlog/spdlog.h>

#include "common/tls_counters.h"
#include "pool/server_connection.h"
#include "protocol/pg/wire.h"

namespace poolguard::pool {

namespace pg = protocol::pg;

asio::awaitable<Status> ServerConnection::negotiate_tls(const ServerTarget& target) {
    const net::TlsContext& ctx = *target.tls;
    // The host actually connected to (one of a host list): verify-full checks its name.
    const std::string host = host_;
    // As libpq and PgBouncer: no TLS over Unix-domain sockets.
    if (host.empty() || host[0] == '/') co_return Status{};
    const bool plain_ok = ctx.mode == "prefer" || ctx.mode == "allow";
    std::string req;
    pg::MessageBuilder m(req, 0);
    m.i32(pg::kSslRequestCode);
    m.finish();
    auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(req), net::use_nothrow);
    if (wec) co_return fail("could not send SSL request: " + wec.message(), sqlstate::kConnectionFailure);
    char answer = 0;
    auto [rec, rn] = co_await asio::async_read(socket_, asio::buffer(&answer, 1), net::use_nothrow);
    if (rec)
        co_return fail("server closed the connection during the SSL request", sqlstate::kConnectionFailure);
    if (answer == 'N') {
        if (plain_ok) co_return Status{};
        co_return fail("server refused TLS (server_tls_sslmode=" + ctx.mode + ")",
                       sqlstate::kConnectionFailure);
    }
    if (answer != 'S')
        co_return fail("server sent an invalid answer to the SSL request", sqlstate::kProtocolViolation);
    // Nothing may follow 'S' before our ClientHello: such bytes would be taken as TLS (CVE-2021-23222 class).
    if (net::has_pending_input(socket_.socket()))
        co_return fail("server sent unencrypted data after SSL response", sqlstate::kProtocolViolation);
    const auto started = std::chrono::steady_clock::now();
    auto st = co_await net::tls_handshake(socket_, ctx, false, host);
    tls_handshake_done("server", st.has_value(), std::chrono::steady_clock::now() - started);
    if (!st) {
        spdlog::warn("S-{}: {}:{} {}", id_, host, port_, st.error().message);
        co_return fail(st.error().message + " (server " + host + ":" + std::to_string(port_) + ")",
                       sqlstate::kConnectionFailure);
    }
    co_return Status{};
}

}  // namespace poolguard::pool
