// Owns the connection-leak rules: Little's law over the pooler's throughput (connections held beyond what
// the traffic explains), and the per-client rule (a client holding a server idle in transaction too long).
#pragma once

#include <deque>
#include <optional>
#include <vector>

#include "detect/sample.h"

namespace poolguard::detect {

// Rule (Little's law, L = lambda * W): over the last window_s (at least two samples), lambda = transactions
// completed per second and W = their mean duration, so expected = lambda * W server connections should be
// busy. A transaction that never ends adds to the held connections but to neither lambda nor W, so excess =
// held - expected is what the traffic does not explain. Warning when excess >= min_excess (0 = 3) has held
// for min_duration_s, critical when excess >= 4 * min_excess. Clears after excess stayed below min_excess for
// min_duration_s. Attribution: the clients holding servers idle in transaction, by application, user and
// address.
class LeakDetector {
  public:
    struct Settings {
        double window_s = 60;
        int min_excess = 0;
        double min_duration_s = 5;
    };
    LeakDetector(std::string database, Settings settings)
        : database_(std::move(database)), settings_(settings) {}

    Finding update(const PoolerSample& sample);
    Severity state() const { return state_; }

  private:
    std::string database_;
    Settings settings_;
    std::deque<PoolerSample> window_;
    Severity state_ = Severity::ok;
    std::optional<double> above_since_, below_since_;
    double last_mean_hold_s_ = 0;
};

// Rule (HikariCP's leak detection, for every language): a client whose server connection has been idle in
// transaction for threshold_s or longer is reported with its address, application_name, user, how long and
// the last statement it ran. Warning at threshold_s, critical at 5 * threshold_s. One finding per client;
// a client that commits, rolls back or disconnects drops out (its finding clears).
class ClientLeakDetector {
  public:
    explicit ClientLeakDetector(double threshold_s) : threshold_s_(threshold_s) {}
    std::vector<Finding> update(const std::vector<ClientHold>& clients) const;

  private:
    double threshold_s_;
};

}  // namespace poolguard::detect
