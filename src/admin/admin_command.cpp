// Owns the admin console's lexical layer: splitting a Query's text into statements, statements into commands.
#include "admin/admin_command.h"

#include <algorithm>
#include <cctype>
#include <utility>

namespace poolguard::admin {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_space(s.back()))
        s.remove_suffix(1);
    return s;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

enum class TokKind { kWord, kIdent, kString, kEquals };

struct Token {
    TokKind kind;
    std::string text;  // unquoted
};

bool is_word_char(char c) {
    return !is_space(c) && c != '=' && c != '\'' && c != '"';
}

std::unexpected<Error> syntax_error(std::string_view statement) {
    return fail("invalid command '" + excerpt(statement) + "', use SHOW HELP;", sqlstate::kSyntaxError);
}

// Reads a quoted token starting at s[i] (the opening quote); doubled quotes stand for one.
Result<std::string> read_quoted(std::string_view s, size_t& i) {
    const char q = s[i++];
    std::string out;
    while (i < s.size()) {
        if (s[i] == q) {
            if (i + 1 < s.size() && s[i + 1] == q) {
                out += q;
                i += 2;
                continue;
            }
            ++i;
            return out;
        }
        out += s[i++];
    }
    return fail(q == '\'' ? "unterminated quoted string" : "unterminated quoted identifier",
                sqlstate::kSyntaxError);
}

Result<std::vector<Token>> lex(std::string_view s) {
    std::vector<Token> toks;
    size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (is_space(c)) {
            ++i;
        } else if (c == '=') {
            toks.push_back({TokKind::kEquals, "="});
            ++i;
        } else if (c == '\'' || c == '"') {
            auto text = read_quoted(s, i);
            if (!text) return std::unexpected(text.error());
            if (c == '"' && text->empty())
                return fail("zero-length delimited identifier", sqlstate::kSyntaxError);
            toks.push_back({c == '"' ? TokKind::kIdent : TokKind::kString, std::move(*text)});
        } else {
            const size_t start = i;
            while (i < s.size() && is_word_char(s[i]))
                ++i;
            toks.push_back({TokKind::kWord, std::string(s.substr(start, i - start))});
        }
    }
    return toks;
}

bool is_name(const Token& t) {
    return t.kind == TokKind::kWord || t.kind == TokKind::kIdent;
}

}  // namespace

std::vector<std::string_view> split_statements(std::string_view sql) {
    std::vector<std::string_view> out;
    char quote = 0;
    size_t start = 0;
    auto push = [&](size_t end) {
        const std::string_view stmt = trim(sql.substr(start, end - start));
        if (!stmt.empty()) out.push_back(stmt);
    };
    for (size_t i = 0; i < sql.size(); ++i) {
        const char c = sql[i];
        if (quote) {
            if (c == quote) quote = 0;  // a doubled quote closes and reopens: same result
        } else if (c == '\'' || c == '"') {
            quote = c;
        } else if (c == ';') {
            push(i);
            start = i + 1;
        }
    }
    push(sql.size());
    return out;
}

Result<AdminCommand> parse_command(std::string_view statement) {
    statement = trim(statement);
    auto toks = lex(statement);
    if (!toks) return std::unexpected(toks.error());
    if (toks->empty() || !is_name(toks->front())) return syntax_error(statement);

    AdminCommand cmd;
    cmd.text = std::string(statement);
    cmd.verb = lower(toks->front().text);
    const std::vector<Token>& t = *toks;

    if (cmd.verb == "set") {
        // SET key {= | TO} value
        if (t.size() != 4 || !is_name(t[1])) return syntax_error(statement);
        const bool assign =
            t[2].kind == TokKind::kEquals || (t[2].kind == TokKind::kWord && lower(t[2].text) == "to");
        if (!assign || t[3].kind == TokKind::kEquals) return syntax_error(statement);
        cmd.set_key = t[1].kind == TokKind::kWord ? lower(t[1].text) : t[1].text;
        cmd.set_value = t[3].text;
        return cmd;
    }

    // CMD [arg]
    if (t.size() > 2) return syntax_error(statement);
    if (t.size() == 2) {
        if (!is_name(t[1])) return syntax_error(statement);
        cmd.arg = t[1].text;
    }
    return cmd;
}

std::string excerpt(std::string_view text, size_t max) {
    size_t n = std::min(max, text.size());
    if (n < text.size()) {  // do not cut a UTF-8 sequence in two
        while (n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80)
            --n;
    }
    std::string out(text.substr(0, n));
    for (char& c : out)
        if (c == '\0') c = ' ';
    if (text.size() > max) out += "...";
    return out;
}

}  // namespace poolguard::admin
