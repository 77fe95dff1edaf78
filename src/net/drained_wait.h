// Owns async_wait_drained: waiting for a socket to become readable again right after this thread emptied its
// receive queue, with no system call. asio's own ways to wait cost one per wait: async_wait re-arms the
// descriptor with epoll_ctl(MOD), and a speculative async_read_some first makes a recv that fails with
// EAGAIN.
#pragma once

#include <asio.hpp>
#include <system_error>
#include <utility>

#include "net/socket.h"
#include "net/stream.h"

namespace poolguard::net {

namespace detail {

// A reactor read operation whose first perform() — the speculative one asio's reactor makes while starting
// the operation — reports "not ready" without touching the socket, so the operation is queued on the
// descriptor as it is (asio registers sockets edge-triggered for input once, so no epoll_ctl is needed). Any
// later perform() comes from an epoll readiness event and completes the wait.
template <typename Handler, typename IoExecutor>
class DrainedWaitOp : public asio::detail::reactor_op {
  public:
    ASIO_DEFINE_HANDLER_PTR(DrainedWaitOp);

    DrainedWaitOp(Handler& handler, const IoExecutor& io_ex)
        : reactor_op(asio::error_code(), &DrainedWaitOp::do_perform, &DrainedWaitOp::do_complete),
          handler_(std::move(handler)),
          work_(handler_, io_ex) {}

    void started() { starting_ = false; }

    static status do_perform(reactor_op* base) {
        auto* o = static_cast<DrainedWaitOp*>(base);
        return o->starting_ ? not_done : done;
    }

    static void do_complete(void* owner, asio::detail::operation* base, const asio::error_code& /*ec*/,
                            std::size_t /*bytes_transferred*/) {
        auto* o = static_cast<DrainedWaitOp*>(base);
        ptr p = {std::addressof(o->handler_), o, o};
        asio::detail::handler_work<Handler, IoExecutor> w(std::move(o->work_));
        asio::detail::binder1<Handler, asio::error_code> handler(o->handler_, o->ec_);
        p.h = std::addressof(handler.handler_);
        p.reset();
        if (owner) {
            asio::detail::fenced_block b(asio::detail::fenced_block::half);
            w.complete(handler, handler.handler_);
        }
    }

  private:
    bool starting_ = true;
    Handler handler_;
    asio::detail::handler_work<Handler, IoExecutor> work_;
};

// Reaches the socket's reactor state (protected in asio's basic_socket) through a pointer to member.
struct SocketAccess : Socket {
    static auto& impl(Socket& socket) { return socket.*(&SocketAccess::impl_); }
};

}  // namespace detail

// True when async_wait_drained may be used on `socket`: it is open and asio already put it in non-blocking
// mode (any earlier asynchronous operation on it does).
inline bool can_wait_drained(Socket& socket) {
    if (!socket.is_open()) return false;
    auto& state = detail::SocketAccess::impl(socket).get_implementation();
    return (state.state_ & asio::detail::socket_ops::non_blocking) != 0;
}

// Waits until `socket` is readable. Precondition (the caller's to keep): a recv on this socket returned
// fewer bytes than it asked for (the receive queue was empty), and since then this coroutine has not
// suspended, and no other thread runs the socket's io_context. Then no readiness event for the socket can
// have been consumed since the queue was emptied, so new data raises a fresh edge that completes this wait.
// Without the precondition a wait could miss data that already arrived: use socket.async_wait instead.
template <typename Token>
auto async_wait_drained(Socket& socket, Token&& token) {
    return asio::async_initiate<Token, void(std::error_code)>(
        [&socket](auto handler) {
            using Handler = decltype(handler);
            auto& impl = detail::SocketAccess::impl(socket);
            auto& state = impl.get_implementation();
            const auto io_ex = impl.get_executor();
            using Op = detail::DrainedWaitOp<Handler, std::remove_cv_t<decltype(io_ex)>>;
            typename Op::ptr p = {std::addressof(handler), Op::ptr::allocate(handler), nullptr};
            p.p = new (p.v) Op(handler, io_ex);
            auto& reactor = asio::use_service<asio::detail::reactor>(
                asio::query(socket.get_executor(), asio::execution::context));
            Op* op = p.p;
            p.v = p.p = nullptr;
            reactor.start_op(asio::detail::reactor::read_op, state.socket_, state.reactor_data_, op,
                             /*is_continuation=*/false, /*allow_speculative=*/true);
            op->started();
        },
        token);
}

// A TLS stream's records are read one at a time, so a short read says nothing about the socket: never
// drained.
inline bool can_wait_drained(Stream& stream) {
    return !stream.is_tls() && can_wait_drained(stream.socket());
}
template <typename Token>
auto async_wait_drained(Stream& stream, Token&& token) {
    return async_wait_drained(stream.socket(), std::forward<Token>(token));
}

}  // namespace poolguard::net
