// Owns AdminService: the admin console's window onto the running pooler (SHOW rows, PAUSE/RESUME/KILL...).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "admin/admin_backend.h"

namespace poolguard::session {

class Proxy;
class ClientSession;

class AdminService : public admin::AdminBackend {
  public:
    explicit AdminService(Proxy& proxy) : proxy_(proxy) {}

    std::vector<admin::PoolRow> pools() override;
    std::vector<admin::ClassRow> classes() override;
    std::vector<admin::BreakerRow> breakers() override;
    std::vector<admin::AdaptiveRow> adaptive() override;
    std::vector<admin::ConnectionRow> clients() override;
    std::vector<admin::ConnectionRow> servers() override;
    std::vector<admin::StatsRow> stats_totals() override;
    std::vector<admin::StatsRow> stats_averages() override;
    std::vector<admin::DatabaseRow> databases() override;
    std::vector<admin::UserRow> users() override;
    std::vector<ConfigRow> config_rows() override;
    std::vector<std::pair<std::string, int64_t>> lists() override;
    std::string version() override;
    std::vector<std::pair<std::string, std::string>> state() override;
    std::vector<admin::GuardRow> guard_rows() override;
    std::vector<admin::FdRow> listener_fds() override;
    std::vector<admin::PeerRow> peers() override;
    std::vector<admin::PeerPoolRow> peer_pools() override;

    Status set(const std::string& key, const std::string& value) override;
    Status pause(const std::string& database) override;
    Status resume(const std::string& database) override;
    Status disable(const std::string& database) override;
    Status enable(const std::string& database) override;
    Status reload() override;
    Status kill(const std::string& database) override;
    Status kill_client(uint64_t client_id) override;
    Status reconnect(const std::string& database) override;
    Status wait_close(const std::string& database) override;
    int close_needed_servers(const std::string& database) override;
    int unflushed_clients() override;
    void drop_unflushed_clients() override;
    std::chrono::milliseconds suspend_timeout() override;
    Status shutdown() override;
    Status shutdown_waiting(bool for_clients) override;
    Status suspend() override;

    // Called every stats_period by the proxy: remembers totals so averages cover the last period.
    void roll_stats_period();

  private:
    Status check_database(const std::string& database) const;

    Proxy& proxy_;
    std::map<std::string, admin::StatsRow> previous_;  // totals at the start of the current period
    std::map<std::string, admin::StatsRow> averages_;  // per-second rates over the last full period
    std::chrono::steady_clock::time_point period_start_ = std::chrono::steady_clock::now();
    bool suspended_ = false;  // SUSPEND until RESUME (SHOW STATE)
};

}  // namespace poolguard::session
