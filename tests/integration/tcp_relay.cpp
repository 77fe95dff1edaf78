// Owns TcpRelay: the fault tests' TCP relay (pass / stall / blackhole / reset); see tcp_relay.h.
#include "tcp_relay.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <vector>

namespace itest {

namespace {

constexpr size_t kMaxBuffered = 1 << 20;  // per direction, while stalled

struct Side {
    int fd = -1;
    std::string out;  // bytes waiting to be written to this side
};

struct Pair {
    Side a;                 // the accepted (pooler) side
    Side b;                 // the target (PostgreSQL) side
    bool poisoned = false;  // lost bytes in kBlackhole: reset when passing again
    bool hangup = false;    // a side reported POLLHUP/POLLERR while stalled: not polled until kPass
    bool dead = false;
};

void set_nonblocking(int fd) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

void close_with_reset(int fd) {
    if (fd < 0) return;
    linger l{1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

int connect_target(const std::string& host, int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    set_nonblocking(fd);
    return fd;
}

// Reads what `from` has; appends it to `to.out` (or drops it). False on EOF or error.
bool pump_in(Side& from, Side& to, bool drop, std::atomic<long long>& dropped) {
    char buf[16384];
    while (true) {
        ssize_t n = read(from.fd, buf, sizeof buf);
        if (n > 0) {
            if (drop)
                dropped += n;
            else
                to.out.append(buf, static_cast<size_t>(n));
            if (to.out.size() >= kMaxBuffered) return true;
            continue;
        }
        if (n == 0) return false;
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
}

// Writes what is buffered for `side`. False on error.
bool pump_out(Side& side) {
    while (!side.out.empty()) {
        ssize_t n = send(side.fd, side.out.data(), side.out.size(), MSG_NOSIGNAL);
        if (n > 0) {
            side.out.erase(0, static_cast<size_t>(n));
            continue;
        }
        return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    }
    return true;
}

}  // namespace

TcpRelay::TcpRelay(std::string target_host, int target_port)
    : target_host_(std::move(target_host)), target_port_(target_port) {
    if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) return;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(fd, 128) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
        close(fd);
        return;
    }
    set_nonblocking(fd);
    port_ = ntohs(addr.sin_port);
    listen_fd_ = fd;
    thread_ = std::thread([this] { run(); });
}

TcpRelay::~TcpRelay() {
    stop_ = true;
    wake();
    if (thread_.joinable()) thread_.join();
    if (listen_fd_ >= 0) close(listen_fd_);
    for (int fd : wake_pipe_)
        if (fd >= 0) close(fd);
}

void TcpRelay::wake() {
    if (wake_pipe_[1] >= 0) {
        char c = 1;
        [[maybe_unused]] ssize_t n = write(wake_pipe_[1], &c, 1);
    }
}

void TcpRelay::set_mode(RelayMode mode) {
    mode_ = mode;
    wake();
}

void TcpRelay::reset_all() {
    ++reset_requests_;
    wake();
    // Returns once the relay thread has done it, so the caller can time what follows.
    while (reset_requests_.load() > 0 && !stop_)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void TcpRelay::run() {
    std::vector<std::unique_ptr<Pair>> pairs;
    while (!stop_) {
        const RelayMode mode = mode_.load();
        if (reset_requests_.load() > 0) {
            for (auto& p : pairs) {
                close_with_reset(p->a.fd);
                close_with_reset(p->b.fd);
            }
            pairs.clear();
            reset_requests_ = 0;
        }
        if (mode == RelayMode::kPass) {
            for (auto& p : pairs) {
                if (!p->poisoned) continue;
                close_with_reset(p->a.fd);
                close_with_reset(p->b.fd);
                p->a.fd = p->b.fd = -1;
                p->dead = true;
            }
        }
        std::erase_if(pairs, [](const auto& p) { return p->dead; });
        connections_ = static_cast<int>(pairs.size());

        std::vector<pollfd> fds;
        fds.push_back({listen_fd_, POLLIN, 0});
        fds.push_back({wake_pipe_[0], POLLIN, 0});
        for (auto& p : pairs) {
            short ea = 0, eb = 0;
            if (mode != RelayMode::kStall) {
                if (p->b.out.size() < kMaxBuffered) ea |= POLLIN;
                if (p->a.out.size() < kMaxBuffered) eb |= POLLIN;
                if (mode == RelayMode::kPass) {
                    if (!p->a.out.empty()) ea |= POLLOUT;
                    if (!p->b.out.empty()) eb |= POLLOUT;
                }
            }
            // A hung-up socket reports POLLHUP even with no events asked for: while stalled, leave it out.
            const bool skip = mode == RelayMode::kStall && p->hangup;
            fds.push_back({skip ? -1 : p->a.fd, ea, 0});
            fds.push_back({skip ? -1 : p->b.fd, eb, 0});
        }
        if (poll(fds.data(), fds.size(), 200) < 0 && errno != EINTR) break;
        if (fds[1].revents & POLLIN) {
            char buf[64];
            while (read(wake_pipe_[0], buf, sizeof buf) > 0) {
            }
        }
        for (size_t i = 0; i < pairs.size(); ++i) {
            Pair& p = *pairs[i];
            const short ra = fds[2 + 2 * i].revents;
            const short rb = fds[3 + 2 * i].revents;
            const bool drop = mode == RelayMode::kBlackhole;
            bool alive = true;
            // In kStall nothing is polled, but a peer that closed still shows POLLHUP/POLLERR: the relay
            // keeps the other side open (it cannot know yet), as a stalled network would.
            if (mode == RelayMode::kStall) {
                if ((ra | rb) & (POLLHUP | POLLERR)) p.hangup = true;
                continue;
            }
            if (ra & (POLLIN | POLLHUP | POLLERR)) alive = pump_in(p.a, p.b, drop, dropped_) && alive;
            if (rb & (POLLIN | POLLHUP | POLLERR)) alive = pump_in(p.b, p.a, drop, dropped_) && alive;
            if (drop && (ra | rb) & POLLIN) p.poisoned = true;
            if (mode == RelayMode::kPass) {
                alive = pump_out(p.a) && alive;
                alive = pump_out(p.b) && alive;
            }
            if (!alive) {
                // One side closed: give the other what is still buffered for it, then close it too.
                if (mode == RelayMode::kPass) {
                    pump_out(p.a);
                    pump_out(p.b);
                }
                close(p.a.fd);
                close(p.b.fd);
                p.a.fd = p.b.fd = -1;
                p.dead = true;
            }
        }
        if (fds[0].revents & POLLIN) {
            while (true) {
                int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                if (c < 0) break;
                int one = 1;
                setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                int t = connect_target(target_host_, target_port_);
                if (t < 0) {
                    close_with_reset(c);  // target down: the pooler sees a reset, as from a dead host
                    continue;
                }
                auto p = std::make_unique<Pair>();
                p->a.fd = c;
                p->b.fd = t;
                p->poisoned = mode_.load() == RelayMode::kBlackhole;
                pairs.push_back(std::move(p));
            }
        }
    }
    for (auto& p : pairs) {
        if (p->a.fd >= 0) close(p->a.fd);
        if (p->b.fd >= 0) close(p->b.fd);
    }
}

}  // namespace itest
