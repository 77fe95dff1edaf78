// Owns Stream's TLS calls (non-blocking OpenSSL on the socket) and the Stream forms of the socket helpers.
#include "net/stream.h"

#include <openssl/err.h>

namespace poolguard::net {

namespace {
TlsWant classify(SSL* ssl, int ret) {
    const int e = SSL_get_error(ssl, ret);
    switch (e) {
        case SSL_ERROR_WANT_READ:
            return TlsWant::kRead;
        case SSL_ERROR_WANT_WRITE:
            return TlsWant::kWrite;
        case SSL_ERROR_ZERO_RETURN:
            ERR_clear_error();
            return TlsWant::kEof;
        case SSL_ERROR_SYSCALL:
            // A peer that closes without close_notify: treated as end of stream (the protocol has its own
            // framing, so a truncated message is still detected above).
            if (ERR_peek_error() == 0) return TlsWant::kEof;
            ERR_clear_error();
            return TlsWant::kError;
        default:
            ERR_clear_error();
            return TlsWant::kError;
    }
}
}  // namespace

TlsWant Stream::tls_read(char* p, size_t n, size_t& done) {
    done = 0;
    if (!socket_.is_open()) return TlsWant::kError;
    const int r = SSL_read_ex(ssl_.get(), p, n, &done);
    if (r == 1) return TlsWant::kNothing;
    return classify(ssl_.get(), r);
}

TlsWant Stream::tls_write(const char* p, size_t n, size_t& done) {
    done = 0;
    if (!socket_.is_open()) return TlsWant::kError;
    // Partial writes are enabled (tls_context.cpp): each finished record counts.
    const int r = SSL_write_ex(ssl_.get(), p, n, &done);
    if (r == 1) return TlsWant::kNothing;
    return classify(ssl_.get(), r);
}

bool has_pending_input(const Stream& stream) {
    return stream.has_buffered_input() || has_pending_input(stream.socket());
}

bool send_now(Stream& stream, std::string_view data) {
    if (!stream.is_tls()) return send_now(stream.socket(), data);
    if (!stream.is_open()) return false;
    size_t sent = 0;
    while (sent < data.size()) {
        size_t done = 0;
        if (stream.tls_write(data.data() + sent, data.size() - sent, done) != TlsWant::kNothing) return false;
        sent += done;
    }
    return true;
}

}  // namespace poolguard::net
