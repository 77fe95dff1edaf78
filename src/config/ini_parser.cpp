// Owns the line-level reading of pgbouncer.ini files: sections, key = value lines, comments and %include.
#include "config/ini_parser.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <expected>
#include <filesystem>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "config/value_parser.h"

namespace poolguard::config {

namespace {

namespace fs = std::filesystem;

std::string location(const std::string& file, int line) {
    return file + ":" + std::to_string(line) + ": ";
}

// Keeps messages readable when a long line is quoted back.
std::string excerpt(std::string_view text) {
    constexpr std::size_t kMax = 60;
    if (text.size() <= kMax) return std::string(text);
    return std::string(text.substr(0, kMax)) + "...";
}

std::expected<std::string, std::string> read_whole_file(const std::string& path) {
    std::error_code ec;
    if (fs::is_directory(path, ec)) return std::unexpected("is a directory");
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return std::unexpected(std::error_code(errno, std::generic_category()).message());
    std::string data;
    char buf[16384];
    while (true) {
        std::size_t n = std::fread(buf, 1, sizeof buf, f);
        data.append(buf, n);
        if (data.size() > kMaxIniFileBytes) {
            std::fclose(f);
            return std::unexpected("file is larger than " + std::to_string(kMaxIniFileBytes >> 20) + " MiB");
        }
        if (n < sizeof buf) break;
    }
    bool failed = std::ferror(f) != 0;
    int saved_errno = errno;
    std::fclose(f);
    if (failed) return std::unexpected(std::error_code(saved_errno, std::generic_category()).message());
    return data;
}

// An identity for loop detection that does not depend on how the path was spelled.
std::string canonical_name(const std::string& path) {
    std::error_code ec;
    fs::path canon = fs::weakly_canonical(path, ec);
    if (ec) canon = fs::absolute(path, ec).lexically_normal();
    return canon.string();
}

class IniParser {
  public:
    explicit IniParser(const IniVisitor& visitor) : visitor_(visitor) {}

    Status parse_top_file(const std::string& path) {
        auto data = read_whole_file(path);
        if (!data) return fail(path + ": cannot read configuration file: " + data.error());
        return parse_text(*data, path);
    }

    Status parse_text(std::string_view text, const std::string& name) {
        stack_.push_back(canonical_name(name));
        Status status = parse_lines(text, name);
        stack_.pop_back();
        return status;
    }

  private:
    Status parse_lines(std::string_view text, const std::string& file) {
        if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);  // UTF-8 byte order mark
        int line_no = 0;
        while (!text.empty()) {
            std::size_t nl = text.find('\n');
            std::string_view raw = text.substr(0, nl);
            text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
            ++line_no;
            if (Status status = parse_line(trim(raw), file, line_no); !status) return status;
        }
        return {};
    }

    Status parse_line(std::string_view line, const std::string& file, int line_no) {
        if (line.empty() || line.front() == ';' || line.front() == '#') return {};
        if (line.front() == '%') return parse_directive(line, file, line_no);
        if (line.front() == '[') return parse_section(line, file, line_no);
        return parse_key_value(line, file, line_no);
    }

    Status parse_section(std::string_view line, const std::string& file, int line_no) {
        std::size_t close = line.find(']');
        if (close == std::string_view::npos) {
            return fail(location(file, line_no) + "malformed section header '" + excerpt(line) +
                        "': missing ']'");
        }
        std::string_view rest = trim(line.substr(close + 1));
        if (!rest.empty() && rest.front() != ';' && rest.front() != '#') {
            return fail(location(file, line_no) + "malformed section header '" + excerpt(line) +
                        "': unexpected text after ']'");
        }
        std::string_view name = trim(line.substr(1, close - 1));
        if (name.empty()) return fail(location(file, line_no) + "empty section name '[]'");
        section_ = to_lower(name);
        IniEntry entry;
        entry.kind = IniEntry::Kind::kSection;
        entry.section = section_;
        entry.file = file;
        entry.line = line_no;
        return visitor_(entry);
    }

    Status parse_key_value(std::string_view line, const std::string& file, int line_no) {
        IniEntry entry;
        entry.kind = IniEntry::Kind::kKeyValue;
        entry.section = section_;
        entry.file = file;
        entry.line = line_no;
        std::size_t value_start = 0;
        if (line.front() == '"') {
            // SQL identifier quoting: "" inside stands for one double quote.
            std::size_t i = 1;
            bool closed = false;
            while (i < line.size()) {
                if (line[i] == '"') {
                    if (i + 1 < line.size() && line[i + 1] == '"') {
                        entry.key.push_back('"');
                        i += 2;
                        continue;
                    }
                    closed = true;
                    ++i;
                    break;
                }
                entry.key.push_back(line[i++]);
            }
            if (!closed) {
                return fail(location(file, line_no) + "unterminated double quote in name '" + excerpt(line) +
                            "'");
            }
            std::string_view rest = trim(line.substr(i));
            if (rest.empty() || rest.front() != '=') {
                return fail(location(file, line_no) + "syntax error: expected '=' after the quoted name \"" +
                            excerpt(entry.key) + "\"");
            }
            if (entry.key.empty()) return fail(location(file, line_no) + "empty name \"\" before '='");
            entry.key_quoted = true;
            value_start = line.size() - rest.size() + 1;
        } else {
            std::size_t eq = line.find('=');
            if (eq == std::string_view::npos) {
                return fail(location(file, line_no) +
                            "syntax error: expected 'name = value', '[section]' or " +
                            "'%include file', got '" + excerpt(line) + "'");
            }
            std::string_view key = trim(line.substr(0, eq));
            if (key.empty()) return fail(location(file, line_no) + "syntax error: missing name before '='");
            entry.key = std::string(key);
            value_start = eq + 1;
        }
        entry.value = std::string(trim(line.substr(value_start)));
        return visitor_(entry);
    }

    Status parse_directive(std::string_view line, const std::string& file, int line_no) {
        std::size_t end = line.find_first_of(" \t");
        std::string directive = to_lower(line.substr(0, end));
        if (directive != "%include") {
            return fail(location(file, line_no) + "unknown directive '" + excerpt(directive) +
                        "' (only %include is supported)");
        }
        std::string_view arg = end == std::string_view::npos ? std::string_view{} : trim(line.substr(end));
        if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"') arg = arg.substr(1, arg.size() - 2);
        if (arg.empty()) return fail(location(file, line_no) + "%include needs a file name");

        fs::path target(arg);
        if (target.is_relative()) target = fs::path(file).parent_path() / target;
        std::string target_name = target.string();
        if (stack_.size() >= static_cast<std::size_t>(kMaxIncludeDepth)) {
            return fail(location(file, line_no) + "%include nested more than " +
                        std::to_string(kMaxIncludeDepth) + " levels deep at '" + target_name + "'");
        }
        std::string canon = canonical_name(target_name);
        if (std::find(stack_.begin(), stack_.end(), canon) != stack_.end()) {
            return fail(location(file, line_no) + "%include loop: '" + target_name +
                        "' is already being read");
        }
        auto data = read_whole_file(target_name);
        if (!data) {
            return fail(location(file, line_no) + "cannot read included file '" + target_name +
                        "': " + data.error());
        }
        return parse_text(*data, target_name);
    }

    const IniVisitor& visitor_;
    std::string section_;
    std::vector<std::string> stack_;  // canonical names of the files being read, outermost first
};

}  // namespace

Status parse_ini_file(const std::string& path, const IniVisitor& visitor) {
    IniParser parser(visitor);
    return parser.parse_top_file(path);
}

Status parse_ini_text(const std::string& text, const std::string& name, const IniVisitor& visitor) {
    IniParser parser(visitor);
    return parser.parse_text(text, name);
}

}  // namespace poolguard::config
