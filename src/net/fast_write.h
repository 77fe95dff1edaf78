// Owns the relay's write fast path: bytes go to the kernel at once when the socket takes them all, and only
// the rest (a full socket buffer) waits in an asynchronous write. Most relayed bursts are a few hundred bytes
// on a socket with room, so the common case costs one sendmsg and no coroutine suspension or trip through
// the scheduler.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <asio.hpp>
#include <cerrno>
#include <system_error>

#include "net/socket.h"
#include "net/stream.h"

namespace poolguard::net {

// Bytes not yet sent in `buffers`.
template <size_t N>
size_t bytes_left(const std::array<asio::const_buffer, N>& buffers) {
    size_t total = 0;
    for (const auto& b : buffers)
        total += b.size();
    return total;
}

// Sends what the socket accepts right now (never blocks, never raises SIGPIPE) and advances `buffers` past
// it. Returns the bytes sent; `ec` is set on a socket error (a full socket buffer is not an error: the caller
// writes bytes_left(buffers) asynchronously). Callers hold the socket's write gate when it has one, so no
// other write can be in progress on the socket.
template <size_t N>
size_t send_available(Socket& socket, std::array<asio::const_buffer, N>& buffers, std::error_code& ec) {
    if (!socket.is_open()) {
        ec = asio::error::bad_descriptor;
        return 0;
    }
    std::array<iovec, N> iov{};
    size_t count = 0;
    for (const auto& b : buffers) {
        if (b.size() == 0) continue;
        iov[count].iov_base = const_cast<void*>(b.data());
        iov[count].iov_len = b.size();
        ++count;
    }
    if (count == 0) return 0;
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = count;
    ssize_t n;
    do {
        n = ::sendmsg(socket.native_handle(), &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) ec = std::error_code(errno, std::system_category());
        return 0;
    }
    size_t left = static_cast<size_t>(n);
    for (auto& b : buffers) {
        const size_t k = std::min(left, b.size());
        b += k;
        left -= k;
    }
    return static_cast<size_t>(n);
}

// The same for a stream: plain streams take the sendmsg path above; TLS hands each buffer to OpenSSL until
// it would block (partial writes are on: whole records count; the rest is retried from the same bytes).
template <size_t N>
size_t send_available(Stream& stream, std::array<asio::const_buffer, N>& buffers, std::error_code& ec) {
    if (!stream.is_tls()) return send_available(stream.socket(), buffers, ec);
    size_t total = 0;
    for (auto& b : buffers) {
        while (b.size() > 0) {
            size_t done = 0;
            const TlsWant want = stream.tls_write(static_cast<const char*>(b.data()), b.size(), done);
            b += done;
            total += done;
            if (want == TlsWant::kNothing) continue;
            if (want == TlsWant::kError || want == TlsWant::kEof)
                ec = std::make_error_code(std::errc::connection_reset);
            return total;
        }
    }
    return total;
}

}  // namespace poolguard::net
