// Owns the parsing of libpq-style "key=value key='quoted value'" strings used in [databases] and [users].
#include "config/connstring.h"

#include "config/value_parser.h"

namespace poolguard::config {

namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

bool is_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

}  // namespace

std::expected<std::vector<ConnstringPair>, std::string> parse_connstring(std::string_view text) {
    std::vector<ConnstringPair> pairs;
    std::size_t i = 0;
    auto skip_spaces = [&] {
        while (i < text.size() && is_space(text[i]))
            ++i;
    };
    while (true) {
        skip_spaces();
        if (i >= text.size()) break;
        std::size_t key_start = i;
        while (i < text.size() && is_key_char(text[i]))
            ++i;
        std::string key = to_lower(text.substr(key_start, i - key_start));
        if (key.empty()) {
            return std::unexpected("unexpected character '" + std::string(1, text[i]) +
                                   "' where a parameter name " + "was expected");
        }
        skip_spaces();
        if (i >= text.size() || text[i] != '=') return std::unexpected("missing '=' after '" + key + "'");
        ++i;
        skip_spaces();
        std::string value;
        if (i < text.size() && text[i] == '\'') {
            ++i;
            bool closed = false;
            while (i < text.size()) {
                if (text[i] == '\'') {
                    if (i + 1 < text.size() && text[i + 1] == '\'') {
                        value.push_back('\'');
                        i += 2;
                        continue;
                    }
                    closed = true;
                    ++i;
                    break;
                }
                value.push_back(text[i++]);
            }
            if (!closed) return std::unexpected("unterminated quoted value for '" + key + "'");
            if (i < text.size() && !is_space(text[i])) {
                return std::unexpected("missing space after the quoted value of '" + key + "'");
            }
        } else {
            std::size_t value_start = i;
            while (i < text.size() && !is_space(text[i]))
                ++i;
            value = std::string(text.substr(value_start, i - value_start));
        }
        pairs.push_back(ConnstringPair{std::move(key), std::move(value)});
    }
    return pairs;
}

}  // namespace poolguard::config
