// Owns parsing of the `options` startup parameter (see startup_options.h).
#include "protocol/pg/startup_options.h"

namespace poolguard::protocol::pg {

namespace {
// Whitespace separates words; a backslash makes the next character literal.
std::vector<std::string> split_words(std::string_view s) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    for (size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (c == '\\' && i + 1 < s.size()) {
            cur.push_back(s[++i]);
            in_word = true;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (in_word) words.push_back(std::move(cur));
            cur.clear();
            in_word = false;
        } else {
            cur.push_back(c);
            in_word = true;
        }
    }
    if (in_word) words.push_back(std::move(cur));
    return words;
}
}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> parse_startup_options(std::string_view options) {
    const auto bad = [] {
        return fail(
            "unsupported options startup parameter: only '-c config=val' and '--config=val' are allowed",
            "08P01");
    };
    std::vector<std::pair<std::string, std::string>> out;
    const auto words = split_words(options);
    for (size_t i = 0; i < words.size(); ++i) {
        const std::string& w = words[i];
        std::string setting;
        bool long_form = false;
        if (w == "-c") {
            if (i + 1 >= words.size()) return bad();
            setting = words[++i];
        } else if (w.starts_with("--")) {
            setting = w.substr(2);
            long_form = true;
        } else if (w.starts_with("-c")) {
            setting = w.substr(2);
        } else {
            return bad();
        }
        const auto eq = setting.find('=');
        if (eq == std::string::npos || eq == 0) return bad();
        std::string name = setting.substr(0, eq);
        if (long_form)
            for (auto& c : name)
                if (c == '-') c = '_';
        out.emplace_back(std::move(name), setting.substr(eq + 1));
    }
    return out;
}

}  // namespace poolguard::protocol::pg
