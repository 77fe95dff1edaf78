// Owns the pool-queue rule: clients of one database waiting in poolguard for a server connection, how many
// and for how long, and which priority classes they are in. It is the pooler's own view of a spike or of a
// pool too small for its load — the database may see nothing wrong while clients pile up in front of it.
#pragma once

#include <string>
#include <vector>

#include "detect/finding.h"

namespace poolguard::detect {

// One pool's (or one class's) queue at a moment, as SHOW POOLS / SHOW CLASSES report it.
struct QueueSample {
    double t = 0;
    int waiting = 0;       // clients waiting for a server now
    double longest_s = 0;  // the longest current wait
    struct Class {
        std::string name;
        int waiting = 0;
        double longest_s = 0;
    };
    std::vector<Class> classes;  // per priority class (empty without classes)
};

// Rule: raised while the longest current wait is at least wait_threshold_s. Severity: warning; critical
// when it reaches half of query_wait_timeout (the clients are about to be refused) — or, without a
// query_wait_timeout, 10 x the threshold. Attribution: the classes with waiting clients, most waiting first.
class QueueDetector {
  public:
    struct Settings {
        double wait_threshold_s = 1;
        double query_wait_timeout_s = 0;  // 0 = none
    };
    QueueDetector(std::string database, Settings settings)
        : database_(std::move(database)), settings_(settings) {}

    Finding update(const QueueSample& sample);
    Severity state() const { return state_; }

  private:
    std::string database_;
    Settings settings_;
    Severity state_ = Severity::ok;
};

}  // namespace poolguard::detect
