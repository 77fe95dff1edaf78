// Owns WriteGate: lets two coroutines (a client's own and its server's relay) take turns writing one socket.
#pragma once

#include <asio.hpp>
#include <vector>

#include "net/socket.h"

namespace poolguard::net {

// Uncontended use costs a flag test; a second writer waits in FIFO order until the first unlocks.
class WriteGate {
  public:
    bool busy() const { return busy_; }
    asio::awaitable<void> wait() {
        while (busy_) {
            asio::steady_timer timer(co_await asio::this_coro::executor,
                                     asio::steady_timer::time_point::max());
            waiters_.push_back(&timer);
            co_await timer.async_wait(use_nothrow);
        }
    }
    void lock() { busy_ = true; }
    void unlock() {
        busy_ = false;
        if (!waiters_.empty()) {
            waiters_.front()->cancel();
            waiters_.erase(waiters_.begin());
        }
    }

  private:
    bool busy_ = false;
    // A vector, not a deque: a deque allocates ~600 bytes up front for every connection, and a second
    // writer is rare (the queue is almost always empty).
    std::vector<asio::steady_timer*> waiters_;
};

}  // namespace poolguard::net
