// Owns alerting to Alertmanager (see alerts.h).
#include "control/alerts.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <fmt/format.h>

#include "control/journal.h"

namespace poolguard::control {

std::string alert_name(const std::string& kind) {
    if (kind == "utilization") return "PoolguardDbUtilization";
    if (kind == "exhaustion_forecast") return "PoolguardExhaustionForecast";
    if (kind == "spike") return "PoolguardConnectionSpike";
    if (kind == "leak") return "PoolguardConnectionLeak";
    if (kind == "client_leak") return "PoolguardClientLeak";
    if (kind == "errors") return "PoolguardConnectionErrors";
    if (kind == "queue") return "PoolguardClientsQueued";
    return "Poolguard_" + kind;
}

std::string AlertBook::key_of(const detect::Finding& f) {
    return f.kind + "|" + f.subject;
}

void AlertBook::update(const std::vector<detect::Finding>& findings, SystemTime now) {
    std::map<std::string, const detect::Finding*> current;
    for (const auto& f : findings)
        if (f.severity != detect::Severity::ok) current[key_of(f)] = &f;
    for (auto it = firing_.begin(); it != firing_.end();) {
        auto cur = current.find(it->first);
        const bool gone = cur == current.end();
        const bool severity_changed =
            !gone && it->second.labels["severity"] != detect::to_string(cur->second->severity);
        if (gone || severity_changed) {  // the label set changes with the severity: end the old alert
            it->second.ends_at = now;
            resolved_.push_back(it->second);
            it = firing_.erase(it);
            ++generation_;
        } else {
            it->second.annotations["summary"] = cur->second->summary;
            ++it;
        }
    }
    for (const auto& [key, f] : current) {
        if (firing_.contains(key)) continue;
        Alert a;
        a.labels = {{"alertname", alert_name(f->kind)},
                    {"severity", detect::to_string(f->severity)},
                    {"detector", f->kind},
                    {"service", "poolguard"},
                    {"instance", instance_}};
        if (!f->database.empty()) a.labels["database"] = f->database;
        if (f->subject != f->database) a.labels["subject"] = f->subject;
        a.annotations["summary"] = f->summary;
        std::string who;
        for (const auto& [dim, v] : f->attribution)
            who += (who.empty() ? "" : "; ") + dim + ": " + v;
        if (!who.empty()) a.annotations["attribution"] = who;
        a.starts_at = now;
        firing_.emplace(key, std::move(a));
        ++generation_;
    }
}

nlohmann::json AlertBook::payload(SystemTime now, std::chrono::seconds hold) const {
    nlohmann::json out = nlohmann::json::array();
    auto add = [&](const Alert& a, SystemTime ends) {
        out.push_back({{"labels", a.labels},
                       {"annotations", a.annotations},
                       {"startsAt", format_time(a.starts_at)},
                       {"endsAt", format_time(ends)}});
    };
    for (const auto& [key, a] : firing_)
        add(a, now + hold);
    for (const auto& a : resolved_)
        add(a, a.ends_at);
    return out;
}

void AlertBook::delivered(uint64_t generation, size_t resolved) {
    resolved_.erase(resolved_.begin(),
                    resolved_.begin() + static_cast<long>(std::min(resolved, resolved_.size())));
    sent_generation_ = generation;
}

AlertPusher::AlertPusher(std::string url, std::string instance, std::chrono::seconds resend)
    : url_(std::move(url)), resend_(resend), book_(std::move(instance)) {
    while (!url_.empty() && url_.back() == '/')
        url_.pop_back();
}

AlertPusher::~AlertPusher() {
    stop();
}

void AlertPusher::start() {
    thread_ = std::thread([this] { run(); });
}

void AlertPusher::stop() {
    {
        std::lock_guard lock(mutex_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

void AlertPusher::update(const std::vector<detect::Finding>& findings) {
    bool changed = false;
    {
        std::lock_guard lock(mutex_);
        book_.update(findings, std::chrono::system_clock::now());
        changed = book_.changed();
    }
    if (changed) cv_.notify_all();
}

void AlertPusher::run() {
    httplib::Client client(url_);
    client.set_connection_timeout(2, 0);
    client.set_read_timeout(5, 0);
    client.set_write_timeout(5, 0);
    auto last_sent = std::chrono::steady_clock::time_point{};
    bool warned = false;
    std::unique_lock lock(mutex_);
    while (!stop_) {
        const auto due = last_sent + resend_;
        cv_.wait_until(lock, due, [&] { return stop_ || book_.changed(); });
        if (stop_) break;
        if (!book_.changed() && (book_.firing() == 0 || std::chrono::steady_clock::now() < due)) {
            if (book_.firing() == 0) last_sent = std::chrono::steady_clock::now();
            continue;
        }
        // Alertmanager resolves an alert at endsAt: hold each firing one for a few resend intervals.
        const std::string body = book_.payload(std::chrono::system_clock::now(), resend_ * 4).dump();
        const uint64_t generation = book_.generation();
        const size_t resolved = book_.resolved_count();
        lock.unlock();
        auto res = client.Post("/api/v2/alerts", body, "application/json");
        lock.lock();
        last_sent = std::chrono::steady_clock::now();
        if (res && res->status / 100 == 2) {
            book_.delivered(generation, resolved);
            warned = false;
        } else if (!warned) {
            warned = true;
            spdlog::warn("alertmanager {}: POST /api/v2/alerts failed: {}", url_,
                         res ? fmt::format("HTTP {} {}", res->status, res->body.substr(0, 200))
                             : httplib::to_string(res.error()));
        }
        if (!res || res->status / 100 != 2) {
            // Retry soon, but not in a tight loop.
            cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
        }
    }
}

}  // namespace poolguard::control
