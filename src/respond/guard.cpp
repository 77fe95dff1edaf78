// Owns the guard registry (modes, counters, SHOW GUARD rows) and the responders' metrics text.
#include "respond/guard.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace poolguard::respond {

namespace {

std::string lower(std::string s) {
    for (auto& c : s)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string strip_quotes(std::string s) {
    if (s.size() >= 2 && (s.front() == '\'' || s.front() == '"') && s.back() == s.front())
        s = s.substr(1, s.size() - 2);
    return s;
}

}  // namespace

std::string to_string(Mode mode) {
    switch (mode) {
        case Mode::off:
            return "off";
        case Mode::dry_run:
            return "dry-run";
        case Mode::on:
            return "on";
    }
    return "off";
}

std::optional<Mode> parse_mode(const std::string& text) {
    const std::string t = lower(strip_quotes(text));
    if (t == "off" || t == "0" || t == "false") return Mode::off;
    if (t == "dry-run" || t == "dry_run" || t == "dryrun") return Mode::dry_run;
    if (t == "on" || t == "1" || t == "true") return Mode::on;
    return std::nullopt;
}

std::string to_string(ResponderKind kind) {
    switch (kind) {
        case ResponderKind::terminate_idle:
            return "terminate_idle";
        case ResponderKind::cancel_long:
            return "cancel_long";
        case ResponderKind::end_leaks:
            return "end_leaks";
    }
    return "";
}

std::string mode_key(ResponderKind kind) {
    return "respond_" + to_string(kind);
}

bool GuardRegistry::is_guard_key(const std::string& key) {
    const std::string k = lower(key);
    if (k == "respond") return true;
    for (auto kind : kAllResponders)
        if (k == mode_key(kind)) return true;
    return false;
}

Status GuardRegistry::set(const std::string& key, const std::string& value) {
    const std::string k = lower(key);
    if (!is_guard_key(k)) return fail("unknown guard setting: " + key, "42704");
    auto mode = parse_mode(value);
    if (!mode)
        return fail("invalid value '" + value + "' for " + k + ": expected off, dry-run or on", "22023");
    for (auto kind : kAllResponders)
        if (k == "respond" || k == mode_key(kind)) set_mode(kind, *mode);
    return {};
}

void GuardRegistry::count(ResponderKind kind, const std::string& outcome, uint64_t n) {
    std::lock_guard lock(mutex_);
    counters_[{to_string(kind), outcome}] += n;
}

std::map<std::pair<std::string, std::string>, uint64_t> GuardRegistry::counters() const {
    std::lock_guard lock(mutex_);
    return counters_;
}

void GuardRegistry::note_last(ResponderKind kind, const std::string& line) {
    std::lock_guard lock(mutex_);
    last_[index(kind)] = line;
}

void GuardRegistry::set_detector_rows(std::vector<GuardRow> rows) {
    std::lock_guard lock(mutex_);
    detector_rows_ = std::move(rows);
}

void GuardRegistry::register_rows(const std::string& name, std::function<std::vector<GuardRow>()> provider) {
    std::lock_guard lock(mutex_);
    providers_[name] = std::move(provider);
}

void GuardRegistry::unregister_rows(const std::string& name) {
    std::lock_guard lock(mutex_);
    providers_.erase(name);
}

void GuardRegistry::set_responder_detail(ResponderKind kind, const std::string& detail) {
    std::lock_guard lock(mutex_);
    detail_[index(kind)] = detail;
}

std::vector<GuardRow> GuardRegistry::rows() const {
    std::vector<GuardRow> out;
    std::vector<std::function<std::vector<GuardRow>()>> providers;
    {
        std::lock_guard lock(mutex_);
        out = detector_rows_;
        for (auto kind : kAllResponders) {
            const size_t i = index(kind);
            std::string detail = detail_[i];
            if (!last_[i].empty()) detail += (detail.empty() ? "" : "; ") + std::string("last: ") + last_[i];
            const char* state = !running()         ? "not running (no control plane)"
                                : last_[i].empty() ? "quiet"
                                                   : "has acted";
            out.push_back(GuardRow{"responder", to_string(kind), to_string(mode(kind)), state, detail});
        }
        for (const auto& [name, fn] : providers_)
            providers.push_back(fn);
    }
    // Providers run outside the lock: they may take locks of their own.
    for (const auto& fn : providers) {
        auto more = fn();
        out.insert(out.end(), more.begin(), more.end());
    }
    return out;
}

void GuardRegistry::reset(Mode initial) {
    for (auto kind : kAllResponders)
        set_mode(kind, initial);
    std::lock_guard lock(mutex_);
    counters_.clear();
    last_ = {};
    detail_ = {};
    detector_rows_.clear();
}

GuardRegistry& guard() {
    static GuardRegistry registry;
    return registry;
}

std::string render_guard_metrics() {
    std::string out;
    out += "# HELP poolguard_responder_mode Responder mode: 0 off, 1 dry-run, 2 on.\n";
    out += "# TYPE poolguard_responder_mode gauge\n";
    for (auto kind : kAllResponders)
        out += fmt::format("poolguard_responder_mode{{responder=\"{}\"}} {}\n", to_string(kind),
                           static_cast<int>(guard().mode(kind)));
    out +=
        "# HELP poolguard_responder_actions_total Responder decisions by outcome (acted, dry_run, "
        "rate_limited, failed, spared, skipped).\n";
    out += "# TYPE poolguard_responder_actions_total counter\n";
    auto counters = guard().counters();
    for (auto kind : kAllResponders)
        for (const char* outcome : {"acted", "dry_run", "rate_limited", "failed", "spared", "skipped"}) {
            auto it = counters.find({to_string(kind), outcome});
            out += fmt::format("poolguard_responder_actions_total{{responder=\"{}\",outcome=\"{}\"}} {}\n",
                               to_string(kind), outcome, it == counters.end() ? 0 : it->second);
        }
    return out;
}

}  // namespace poolguard::respond
