// Owns `poolguard logscan`: reads files (or stdin) line by line into the sans-I/O LogScan and prints the
// per-category report as text or JSON.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "ops/commands.h"
#include "ops/log_classifier.h"

namespace poolguard::ops {

namespace {

constexpr size_t kMaxHistogramRows = 20;

std::vector<LogCategory> seen_categories(const LogScan& scan) {
    std::vector<LogCategory> out;
    for (size_t i = 0; i < kLogCategoryCount; ++i)
        if (scan.stats(static_cast<LogCategory>(i)).count > 0) out.push_back(static_cast<LogCategory>(i));
    std::stable_sort(out.begin(), out.end(),
                     [&](LogCategory a, LogCategory b) { return scan.stats(a).count > scan.stats(b).count; });
    return out;
}

nlohmann::json to_json(const LogScan& scan, const std::vector<std::string>& sources) {
    auto categories = nlohmann::json::array();
    for (auto c : seen_categories(scan)) {
        const auto& st = scan.stats(c);
        nlohmann::json per_minute = nlohmann::json::object();
        for (const auto& [minute, n] : st.per_minute)
            per_minute[minute] = n;
        categories.push_back(
            {{"category", to_string(c)},
             {"count", st.count},
             {"first_seen", st.first_seen ? nlohmann::json(*st.first_seen) : nlohmann::json(nullptr)},
             {"last_seen", st.last_seen ? nlohmann::json(*st.last_seen) : nlohmann::json(nullptr)},
             {"per_minute", per_minute},
             {"lines_without_timestamp", st.without_timestamp},
             {"action", runbook_action(c)},
             {"example", st.example}});
    }
    return {{"sources", sources},
            {"lines_scanned", scan.lines()},
            {"matching_lines", scan.total_matches()},
            {"categories", categories}};
}

std::string render_text(const LogScan& scan, const std::vector<std::string>& sources) {
    std::string src;
    for (const auto& s : sources)
        src += (src.empty() ? "" : ", ") + s;
    const auto cats = seen_categories(scan);
    if (cats.empty())
        return fmt::format("No connection-exhaustion errors in {} lines ({}).\n", scan.lines(), src);
    std::string out = fmt::format("{} connection-exhaustion lines in {} scanned ({})\n", scan.total_matches(),
                                  scan.lines(), src);
    for (auto c : cats) {
        const auto& st = scan.stats(c);
        out += fmt::format("\n{}  x{}   first {}   last {}\n", to_string(c), st.count,
                           st.first_seen.value_or("-"), st.last_seen.value_or("-"));
        int peak = 1;
        for (const auto& [m, n] : st.per_minute)
            peak = std::max(peak, n);
        size_t rows = 0;
        for (const auto& [minute, n] : st.per_minute) {
            if (++rows > kMaxHistogramRows) {
                out += fmt::format("    ... {} more minutes (--json has all)\n",
                                   st.per_minute.size() - kMaxHistogramRows);
                break;
            }
            const int width = std::max(1, n * 30 / peak);
            out += fmt::format("    {}  {} {}\n", minute, std::string(static_cast<size_t>(width), '#'), n);
        }
        if (st.without_timestamp > 0)
            out += fmt::format("    ({} lines without a timestamp)\n", st.without_timestamp);
        out += fmt::format("  e.g. {}\n", st.example);
        out += fmt::format("  do:  {}\n", runbook_action(c));
    }
    return out;
}

}  // namespace

int run_logscan(const LogscanOptions& options) {
    LogScan scan;
    std::vector<std::string> sources;
    std::string line;
    if (options.files.empty()) {
        sources.push_back("stdin");
        while (std::getline(std::cin, line))
            scan.add_line(line);
    }
    for (const auto& path : options.files) {
        if (path == "-") {
            sources.push_back("stdin");
            while (std::getline(std::cin, line))
                scan.add_line(line);
            continue;
        }
        std::ifstream in(path);
        if (!in) {
            std::fprintf(
                stderr,
                "poolguard: cannot read %s: %s\n  what to do: check the path (no FILE or - reads stdin)\n",
                path.c_str(), std::strerror(errno));
            return 2;
        }
        sources.push_back(path);
        while (std::getline(in, line))
            scan.add_line(line);
    }
    if (options.json)
        std::fputs((to_json(scan, sources).dump(2) + "\n").c_str(), stdout);
    else
        std::fputs(render_text(scan, sources).c_str(), stdout);
    return 0;
}

}  // namespace poolguard::ops
