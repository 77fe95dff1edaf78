// Owns Stream: one connection's byte stream, plain socket or TLS over it, with the same asio stream
// interface.
#pragma once

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <asio.hpp>
#include <cerrno>
#include <memory>
#include <string_view>
#include <system_error>
#include <utility>

#include "net/socket.h"

namespace poolguard::net {

struct SslFree {
    void operator()(SSL* ssl) const { SSL_free(ssl); }
};
using SslPtr = std::unique_ptr<SSL, SslFree>;

// What a non-blocking TLS call needs before it can go on.
enum class TlsWant { kNothing, kRead, kWrite, kEof, kError };

// A connection to a client or server. Plain: every operation forwards to the socket (one predictable
// branch, no virtual call, no extra copy). TLS: OpenSSL runs directly on the non-blocking descriptor and
// asio's reactor only waits for readiness (async_wait), so no bytes pass through an extra buffer. Models
// asio's AsyncReadStream/AsyncWriteStream, so asio::async_read / asio::async_write work on it unchanged.
// One thread uses a stream at a time (the io thread); reads and writes may interleave.
class Stream {
  public:
    using executor_type = Socket::executor_type;
    using wait_type = Socket::wait_type;

    explicit Stream(Socket socket) : socket_(std::move(socket)) {}
    Stream(Stream&&) = default;
    Stream& operator=(Stream&&) = default;

    Socket& socket() { return socket_; }
    const Socket& socket() const { return socket_; }
    executor_type get_executor() { return socket_.get_executor(); }
    bool is_open() const { return socket_.is_open(); }
    Socket::native_handle_type native_handle() { return socket_.native_handle(); }
    void cancel(std::error_code& ec) { socket_.cancel(ec); }
    // TLS: a close_notify alert first, best effort (never blocks).
    void shutdown(asio::socket_base::shutdown_type what, std::error_code& ec) {
        if (ssl_ && !tls_closed_) {
            tls_closed_ = true;
            ERR_clear_error();
            (void)SSL_shutdown(ssl_.get());
            ERR_clear_error();
        }
        socket_.shutdown(what, ec);
    }
    void close(std::error_code& ec) { socket_.close(ec); }

    bool is_tls() const { return ssl_ != nullptr; }
    SSL* ssl() const { return ssl_.get(); }
    // Makes the stream TLS from here on (after a finished handshake on this socket).
    void attach_tls(SslPtr ssl) { ssl_ = std::move(ssl); }

    // Decrypted bytes (or a whole record) already inside OpenSSL: readable without waiting for the socket.
    bool has_buffered_input() const { return ssl_ && SSL_has_pending(ssl_.get()) == 1; }

    // Like recv(MSG_DONTWAIT): > 0 bytes read, 0 end of stream, -1 with `err` (EAGAIN: nothing yet).
    ssize_t read_nonblocking(char* p, size_t n, int& err) {
        err = 0;
        if (!ssl_) {
            const ssize_t r = ::recv(socket_.native_handle(), p, n, MSG_DONTWAIT);
            if (r < 0) err = errno;
            return r;
        }
        size_t got = 0;
        const TlsWant want = tls_read(p, n, got);
        if (want == TlsWant::kNothing) return static_cast<ssize_t>(got);
        if (want == TlsWant::kEof) return 0;
        err = want == TlsWant::kError ? ECONNRESET : EAGAIN;
        return -1;
    }

    // Sends what can go now without blocking (TLS: whole or partial records). Returns the bytes taken;
    // `ec` is set on an error, not when the socket is full.
    size_t write_nonblocking(const char* p, size_t n, std::error_code& ec) {
        if (!ssl_) {
            ssize_t r;
            do {
                r = ::send(socket_.native_handle(), p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
            } while (r < 0 && errno == EINTR);
            if (r >= 0) return static_cast<size_t>(r);
            if (errno != EAGAIN && errno != EWOULDBLOCK) ec = std::error_code(errno, std::system_category());
            return 0;
        }
        size_t done = 0;
        const TlsWant want = tls_write(p, n, done);
        if (want == TlsWant::kError || want == TlsWant::kEof)
            ec = std::make_error_code(std::errc::connection_reset);
        return done;
    }

    template <typename Token>
    auto async_wait(wait_type what, Token&& token) {
        if (ssl_ && what == wait_type::wait_read && has_buffered_input()) {
            return asio::async_initiate<Token, void(std::error_code)>(
                [this](auto handler) {
                    auto ex = asio::get_associated_executor(handler, socket_.get_executor());
                    asio::post(ex, [h = std::move(handler)]() mutable { std::move(h)(std::error_code()); });
                },
                token);
        }
        return socket_.async_wait(what, std::forward<Token>(token));
    }

    template <typename MutableBuffers, typename Token>
    auto async_read_some(const MutableBuffers& buffers, Token&& token) {
        if (!ssl_) return socket_.async_read_some(buffers, std::forward<Token>(token));
        asio::mutable_buffer first = first_buffer<asio::mutable_buffer>(buffers);
        return asio::async_compose<Token, void(std::error_code, size_t)>(ReadOp{this, first}, token, socket_);
    }

    template <typename ConstBuffers, typename Token>
    auto async_write_some(const ConstBuffers& buffers, Token&& token) {
        if (!ssl_) return socket_.async_write_some(buffers, std::forward<Token>(token));
        asio::const_buffer first = first_buffer<asio::const_buffer>(buffers);
        return asio::async_compose<Token, void(std::error_code, size_t)>(WriteOp{this, first}, token,
                                                                         socket_);
    }

    // The raw TLS calls (public for the handshake driver and tests). `done` gets the bytes moved.
    TlsWant tls_read(char* p, size_t n, size_t& done);
    TlsWant tls_write(const char* p, size_t n, size_t& done);

  private:
    template <typename Buffer, typename Buffers>
    static Buffer first_buffer(const Buffers& buffers) {
        for (auto it = asio::buffer_sequence_begin(buffers); it != asio::buffer_sequence_end(buffers); ++it) {
            Buffer b(*it);
            if (b.size() > 0) return b;
        }
        return Buffer();
    }

    // Waits for whatever OpenSSL needs, then retries; completes with the first bytes moved.
    struct ReadOp {
        Stream* s;
        asio::mutable_buffer buf;
        template <typename Self>
        void operator()(Self& self, std::error_code ec = {}) {
            if (ec) return self.complete(ec, 0);
            if (buf.size() == 0) return self.complete(std::error_code(), 0);
            size_t done = 0;
            switch (s->tls_read(static_cast<char*>(buf.data()), buf.size(), done)) {
                case TlsWant::kNothing:
                    return self.complete(std::error_code(), done);
                case TlsWant::kRead:
                    return s->socket_.async_wait(wait_type::wait_read, std::move(self));
                case TlsWant::kWrite:
                    return s->socket_.async_wait(wait_type::wait_write, std::move(self));
                case TlsWant::kEof:
                    return self.complete(asio::error::eof, 0);
                case TlsWant::kError:
                    return self.complete(asio::error::connection_reset, 0);
            }
        }
    };
    struct WriteOp {
        Stream* s;
        asio::const_buffer buf;
        template <typename Self>
        void operator()(Self& self, std::error_code ec = {}) {
            if (ec) return self.complete(ec, 0);
            if (buf.size() == 0) return self.complete(std::error_code(), 0);
            size_t done = 0;
            switch (s->tls_write(static_cast<const char*>(buf.data()), buf.size(), done)) {
                case TlsWant::kNothing:
                    return self.complete(std::error_code(), done);
                case TlsWant::kRead:
                    return s->socket_.async_wait(wait_type::wait_read, std::move(self));
                case TlsWant::kWrite:
                    return s->socket_.async_wait(wait_type::wait_write, std::move(self));
                case TlsWant::kEof:
                case TlsWant::kError:
                    return self.complete(asio::error::connection_reset, 0);
            }
        }
    };

    Socket socket_;
    SslPtr ssl_;
    bool tls_closed_ = false;
};

// The socket helpers of socket.h for a stream: TLS-aware (buffered records count as input; the final
// message goes out encrypted).
bool has_pending_input(const Stream& stream);
bool send_now(Stream& stream, std::string_view data);

}  // namespace poolguard::net
