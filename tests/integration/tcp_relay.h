// Owns TcpRelay: an in-test TCP relay between a pooler and PostgreSQL (issue 15 fault tests) that can pass
// bytes, stall (stop forwarding, keep the sockets), blackhole (drop bytes) or reset every connection.
#pragma once

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

namespace itest {

enum class RelayMode {
    kPass,       // forward both ways
    kStall,      // forward nothing, keep (and buffer) what arrives: a network that stopped and comes back —
                 // the buffered bytes are delivered when the mode goes back to kPass, as TCP would
    kBlackhole,  // read and drop everything both ways: packets lost for good; a connection that lost bytes
                 // can never be used again, so it is reset when the mode goes back to kPass
};

// Listens on 127.0.0.1:<free port>; each accepted connection gets its own connection to the target. One poll
// thread. New connections during kStall/kBlackhole are accepted (the kernel would complete the handshake
// anyway) and treated like the others.
class TcpRelay {
  public:
    TcpRelay(std::string target_host, int target_port);
    ~TcpRelay();
    TcpRelay(const TcpRelay&) = delete;
    TcpRelay& operator=(const TcpRelay&) = delete;

    bool ok() const { return listen_fd_ >= 0; }
    int port() const { return port_; }
    void set_mode(RelayMode mode);
    RelayMode mode() const { return mode_.load(); }
    // Closes every current connection with a TCP RST on both sides (new ones are relayed as usual).
    void reset_all();
    // Connections currently relayed.
    int connections() const { return connections_.load(); }
    // Bytes dropped in kBlackhole so far.
    long long dropped_bytes() const { return dropped_.load(); }

  private:
    void run();
    void wake();

    std::string target_host_;
    int target_port_;
    int listen_fd_ = -1;
    int port_ = 0;
    int wake_pipe_[2] = {-1, -1};
    std::atomic<RelayMode> mode_{RelayMode::kPass};
    std::atomic<bool> stop_{false};
    std::atomic<int> reset_requests_{0};
    std::atomic<int> connections_{0};
    std::atomic<long long> dropped_{0};
    std::thread thread_;
};

}  // namespace itest
