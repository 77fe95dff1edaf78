// Owns reading the admin console's messages (issue 15): queries up to kMaxAdminMessage, and a clear ERROR
// for a longer one instead of the authentication phase's length error; the session stays usable. Also the
// console's wait of WAIT_CLOSE.
#include <algorithm>
#include <array>

#include "protocol/pg/wire.h"
#include "session/client_session.h"
#include "session/proxy.h"
#include "session/session_helpers.h"

namespace poolguard::session {

namespace pg = protocol::pg;

asio::awaitable<Result<std::pair<char, std::string>>> ClientSession::read_admin_message() {
    while (true) {
        char header[5];
        auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(header), net::use_nothrow);
        if (ec) co_return fail("client disconnected");
        const uint32_t len = pg::read_be32(header + 1);
        if (len < 4) co_return fail("invalid message length", sqlstate_of(ErrorKind::kProtocolViolation));
        if (len - 4 <= detail::kMaxAdminMessage) {
            std::string body(len - 4, '\0');
            auto [ec2, n2] = co_await asio::async_read(socket_, asio::buffer(body), net::use_nothrow);
            if (ec2) co_return fail("client disconnected");
            co_return std::pair{header[0], std::move(body)};
        }
        // Too long: read past it in pieces (never buffered whole), answer, and wait for the next message.
        uint64_t left = len - 4;
        std::array<char, 16 * 1024> sink;
        while (left > 0) {
            const size_t want = static_cast<size_t>(std::min<uint64_t>(left, sink.size()));
            auto [ec3, n3] =
                co_await asio::async_read(socket_, asio::buffer(sink.data(), want), net::use_nothrow);
            if (ec3) co_return fail("client disconnected");
            left -= n3;
        }
        std::string out;
        pg::append_error(
            out, pg::ErrorFields{"ERROR",
                                 sqlstate_of(ErrorKind::kProgramLimit),
                                 "admin console message too long: " + std::to_string(len - 4) +
                                     " bytes (the limit is " + std::to_string(detail::kMaxAdminMessage) + ")",
                                 {},
                                 {}});
        pg::append_ready_for_query(out, 'I');
        auto [wec, wn] = co_await asio::async_write(socket_, asio::buffer(out), net::use_nothrow);
        if (wec) co_return fail("client disconnected");
    }
}

asio::awaitable<bool> ClientSession::admin_wait(const admin::AdminConsole::PendingWait& wait) {
    using Kind = admin::AdminConsole::PendingWait::Kind;
    auto& backend = proxy_.admin_backend();
    const auto timeout = backend.suspend_timeout();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    asio::steady_timer timer(socket_.get_executor());
    while (wait.kind == Kind::kWaitClose ? backend.close_needed_servers(wait.database) > 0
                                         : backend.unflushed_clients() > 0) {
        if (closing_) co_return false;
        if (wait.kind == Kind::kSuspend && timeout.count() > 0 &&
            std::chrono::steady_clock::now() >= deadline) {
            backend.drop_unflushed_clients();
            break;
        }
        timer.expires_after(std::chrono::milliseconds(50));
        auto [ec] = co_await timer.async_wait(net::use_nothrow);
        if (ec) co_return false;
    }
    co_return !closing_;
}

}  // namespace poolguard::session
