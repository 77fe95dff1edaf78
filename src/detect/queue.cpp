// Owns the pool-queue rule (see queue.h).
#include "detect/queue.h"

#include <fmt/format.h>

#include <algorithm>

namespace poolguard::detect {

Finding QueueDetector::update(const QueueSample& s) {
    Finding f;
    f.kind = "queue";
    f.subject = f.database = database_;
    const double threshold = settings_.wait_threshold_s;
    const double critical_at =
        settings_.query_wait_timeout_s > 0 ? settings_.query_wait_timeout_s / 2 : threshold * 10;
    f.evidence = {{"waiting", s.waiting},
                  {"longest_wait_s", s.longest_s},
                  {"wait_threshold_s", threshold},
                  {"critical_at_s", critical_at}};
    if (s.waiting <= 0 || s.longest_s < threshold) {
        state_ = Severity::ok;
        f.summary = fmt::format("{} client(s) waiting for a server, longest {:.1f} s", std::max(s.waiting, 0),
                                s.longest_s);
        return f;
    }
    state_ = s.longest_s >= critical_at ? Severity::critical : Severity::warning;
    f.severity = state_;
    f.summary = fmt::format(
        "{} client(s) waiting for a server connection, the longest for {:.1f} s{}", s.waiting, s.longest_s,
        state_ == Severity::critical && settings_.query_wait_timeout_s > 0
            ? fmt::format(" (query_wait_timeout {:.0f} s refuses them soon)", settings_.query_wait_timeout_s)
            : "");
    auto classes = s.classes;
    std::erase_if(classes, [](const QueueSample::Class& c) { return c.waiting <= 0; });
    std::sort(classes.begin(), classes.end(), [](const auto& a, const auto& b) {
        return a.waiting != b.waiting ? a.waiting > b.waiting : a.name < b.name;
    });
    for (size_t i = 0; i < classes.size() && i < 3; ++i)
        f.attribution.emplace_back("class", fmt::format("{} ({} waiting, longest {:.1f} s)", classes[i].name,
                                                        classes[i].waiting, classes[i].longest_s));
    return f;
}

}  // namespace poolguard::detect
