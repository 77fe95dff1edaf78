// Owns the incident journal (see journal.h).
#include "control/journal.h"

#include <fmt/format.h>

#include <cmath>
#include <ctime>

namespace poolguard::control {

nlohmann::json finding_to_json(const detect::Finding& f) {
    nlohmann::json j;
    j["kind"] = f.kind;
    j["subject"] = f.subject;
    j["database"] = f.database;
    j["severity"] = detect::to_string(f.severity);
    j["summary"] = f.summary;
    nlohmann::json evidence = nlohmann::json::object();
    for (const auto& [k, v] : f.evidence)
        evidence[k] = v;
    j["evidence"] = evidence;
    nlohmann::json attribution = nlohmann::json::object();
    for (const auto& [k, v] : f.attribution)
        attribution[k].push_back(v);
    j["attribution"] = attribution;
    return j;
}

std::string format_time(std::chrono::system_clock::time_point t) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    const std::time_t secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03d}Z", buf, static_cast<int>(ms % 1000));
}

nlohmann::json journal_entry(const detect::Finding& f, detect::Severity previous,
                             std::chrono::system_clock::time_point at) {
    nlohmann::json j = finding_to_json(f);
    j["time"] = format_time(at);
    j["previous"] = detect::to_string(previous);
    j["event"] = f.severity == detect::Severity::ok ? "resolved"
                 : previous == detect::Severity::ok ? "raised"
                                                    : "changed";
    return j;
}

std::string format_journal_line(const std::string& line) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return line;
    auto str = [&](const char* key) {
        return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
    };
    std::string sev = str("severity");
    for (auto& c : sev)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    std::string out = fmt::format("{}  {:<8} {:<20} {:<12} {}", str("time"), sev, str("kind"),
                                  str("database").empty() ? "-" : str("database"), str("summary"));
    if (str("event") == "resolved") out += "  [resolved]";
    if (j.contains("attribution") && j["attribution"].is_object()) {
        for (const auto& [dim, values] : j["attribution"].items()) {
            std::string joined;
            for (const auto& v : values)
                joined += (joined.empty() ? "" : ", ") + (v.is_string() ? v.get<std::string>() : v.dump());
            out += fmt::format("\n    {}: {}", dim, joined);
        }
    }
    if (j.contains("evidence") && j["evidence"].is_object() && !j["evidence"].empty()) {
        std::string ev;
        for (const auto& [k, v] : j["evidence"].items()) {
            if (!v.is_number()) continue;
            const double x = v.get<double>();
            const bool whole = std::abs(x) < 1e15 && x == static_cast<double>(static_cast<long long>(x));
            ev +=
                fmt::format("{}{}={}", ev.empty() ? "" : " ", k,
                            whole ? fmt::format("{}", static_cast<long long>(x)) : fmt::format("{:.3g}", x));
        }
        out += "\n    evidence: " + ev;
    }
    return out;
}

Status Journal::open(const std::string& path) {
    if (path.empty()) return {};
    out_.open(path, std::ios::app);
    if (!out_) return fail("cannot open journal_file " + path + " for appending");
    return {};
}

void Journal::append(const nlohmann::json& entry) {
    std::lock_guard lock(mutex_);
    if (out_.is_open()) {
        out_ << entry.dump() << '\n';
        out_.flush();
    }
    recent_.push_back(entry);
    if (recent_.size() > 2000) recent_.erase(recent_.begin(), recent_.begin() + 1000);
}

nlohmann::json Journal::recent(size_t limit) const {
    std::lock_guard lock(mutex_);
    nlohmann::json out = nlohmann::json::array();
    const size_t start = recent_.size() > limit ? recent_.size() - limit : 0;
    for (size_t i = start; i < recent_.size(); ++i)
        out.push_back(recent_[i]);
    return out;
}

}  // namespace poolguard::control
