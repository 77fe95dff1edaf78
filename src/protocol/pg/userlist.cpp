// Owns PgBouncer's auth_file (userlist.txt) format: parsing it into user -> secret and classifying secrets.
#include "protocol/pg/userlist.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <utility>

#include "protocol/pg/md5_auth.h"
#include "protocol/pg/scram.h"

namespace poolguard::protocol::pg {

namespace {

constexpr std::string_view kScramSecretPrefix = "SCRAM-SHA-256$";
constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

void skip_blanks(std::string_view& s) {
    while (!s.empty() && is_blank(s.front()))
        s.remove_prefix(1);
}

// Reads a field starting at the opening quote; "" stands for one quote. Consumes through the closing quote.
std::optional<std::string> read_quoted(std::string_view& s) {
    std::string out;
    s.remove_prefix(1);  // opening quote
    while (!s.empty()) {
        const char c = s.front();
        s.remove_prefix(1);
        if (c != '"') {
            out += c;
        } else if (!s.empty() && s.front() == '"') {
            out += '"';
            s.remove_prefix(1);
        } else {
            return out;
        }
    }
    return std::nullopt;
}

}  // namespace

SecretKind classify_secret(std::string_view secret) {
    if (is_md5_secret(secret)) return SecretKind::kMd5;
    if (secret.starts_with(kScramSecretPrefix)) return SecretKind::kScramSha256;
    return SecretKind::kPlain;
}

Result<std::map<std::string, std::string>> parse_userlist(std::string_view text,
                                                          std::string_view file_name_for_errors) {
    std::map<std::string, std::string> users;
    if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
    std::size_t line_no = 0;
    while (!text.empty()) {
        const auto newline = text.find('\n');
        std::string_view line = text.substr(0, newline);
        text.remove_prefix(newline == std::string_view::npos ? text.size() : newline + 1);
        ++line_no;

        auto error = [&](std::string_view why) {
            return fail(std::string(file_name_for_errors) + ":" + std::to_string(line_no) + ": " +
                        std::string(why));
        };
        if (line.find('\0') != std::string_view::npos) return error("NUL byte in auth file");
        skip_blanks(line);
        if (line.empty() || line.front() == ';' || line.front() == '#') continue;

        if (line.front() != '"') return error("expected a double-quoted user name");
        auto user = read_quoted(line);
        if (!user) return error("unterminated user name (missing closing '\"')");
        if (user->empty()) return error("empty user name");
        skip_blanks(line);
        if (line.empty() || line.front() != '"')
            return error("expected a double-quoted password after the user name");
        auto password = read_quoted(line);
        if (!password) return error("unterminated password (missing closing '\"')");
        if (classify_secret(*password) == SecretKind::kScramSha256) {
            if (auto parsed = parse_scram_secret(*password); !parsed) {
                return error("user \"" + *user + "\": " + parsed.error().message);
            }
        }
        users.insert_or_assign(std::move(*user), std::move(*password));
    }
    return users;
}

Result<std::map<std::string, std::string>> load_userlist(const std::string& path) {
    std::FILE* file = std::fopen(path.c_str(), "rb");
    if (file == nullptr) return fail("cannot open auth file \"" + path + "\": " + std::strerror(errno));
    std::string contents;
    char buffer[8192];
    std::size_t n = 0;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0)
        contents.append(buffer, n);
    const bool read_error = std::ferror(file) != 0;
    const int saved_errno = errno;
    std::fclose(file);
    if (read_error) return fail("cannot read auth file \"" + path + "\": " + std::strerror(saved_errno));
    return parse_userlist(contents, path);
}

}  // namespace poolguard::protocol::pg
