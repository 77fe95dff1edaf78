// Tests the line-level ini reader: comments, sections, quoting of names, %include and its loop guard.
#include "config/ini_parser.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace poolguard::config {
namespace {

namespace fs = std::filesystem;

// A scratch directory unique to the running test, removed afterwards.
class ScratchDir {
  public:
    ScratchDir() {
        const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
        path_ = fs::temp_directory_path() / ("poolguard_ini_" + std::to_string(::getpid()) + "_" +
                                             info->test_suite_name() + "_" + info->name());
        fs::remove_all(path_);
        fs::create_directories(path_);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    std::string write(const std::string& name, const std::string& text) const {
        fs::path file = path_ / name;
        fs::create_directories(file.parent_path());
        std::ofstream(file, std::ios::binary) << text;
        return file.string();
    }
    const fs::path& path() const { return path_; }

  private:
    fs::path path_;
};

struct Collected {
    std::vector<IniEntry> entries;
    Status status;
};

Collected parse_text(const std::string& text, const std::string& name = "test.ini") {
    Collected out;
    out.status = parse_ini_text(text, name, [&](const IniEntry& entry) -> Status {
        out.entries.push_back(entry);
        return {};
    });
    return out;
}

Collected parse_file(const std::string& path) {
    Collected out;
    out.status = parse_ini_file(path, [&](const IniEntry& entry) -> Status {
        out.entries.push_back(entry);
        return {};
    });
    return out;
}

std::vector<IniEntry> key_values(const Collected& c) {
    std::vector<IniEntry> out;
    for (const auto& e : c.entries) {
        if (e.kind == IniEntry::Kind::kKeyValue) out.push_back(e);
    }
    return out;
}

TEST(ConfigIniParser, CommentsBlankLinesAndTrimming) {
    auto c = parse_text(
        "; comment\n"
        "# another\n"
        "\n"
        "   [PgBouncer]   \n"
        "  listen_port   =   6432  \n"
        "\t; indented comment\n"
        "logfile = /var/log/x.log ; not a comment\n");
    ASSERT_TRUE(c.status) << c.status.error().message;
    ASSERT_EQ(c.entries.size(), 3u);
    EXPECT_EQ(c.entries[0].kind, IniEntry::Kind::kSection);
    EXPECT_EQ(c.entries[0].section, "pgbouncer");
    EXPECT_EQ(c.entries[0].line, 4);
    EXPECT_EQ(c.entries[1].key, "listen_port");
    EXPECT_EQ(c.entries[1].value, "6432");
    EXPECT_EQ(c.entries[1].section, "pgbouncer");
    EXPECT_EQ(c.entries[1].line, 5);
    EXPECT_EQ(c.entries[1].file, "test.ini");
    EXPECT_EQ(c.entries[2].value, "/var/log/x.log ; not a comment");
    EXPECT_EQ(c.entries[2].line, 7);
}

TEST(ConfigIniParser, CrLfAndByteOrderMark) {
    auto c = parse_text("\xEF\xBB\xBF[databases]\r\nfoo = host=x\r\n");
    ASSERT_TRUE(c.status) << c.status.error().message;
    auto kv = key_values(c);
    ASSERT_EQ(kv.size(), 1u);
    EXPECT_EQ(kv[0].key, "foo");
    EXPECT_EQ(kv[0].value, "host=x");
    EXPECT_EQ(kv[0].line, 2);
}

TEST(ConfigIniParser, ValueMayContainEqualsAndBeEmpty) {
    auto c = parse_text("[databases]\nfoo = host=a port=1\nbar =\n");
    ASSERT_TRUE(c.status);
    auto kv = key_values(c);
    ASSERT_EQ(kv.size(), 2u);
    EXPECT_EQ(kv[0].value, "host=a port=1");
    EXPECT_EQ(kv[1].key, "bar");
    EXPECT_EQ(kv[1].value, "");
}

TEST(ConfigIniParser, QuotedNames) {
    auto c = parse_text("[databases]\n\"my-db=1\" = host=a\n\"say \"\"hi\"\"\"=host=b\n");
    ASSERT_TRUE(c.status) << c.status.error().message;
    auto kv = key_values(c);
    ASSERT_EQ(kv.size(), 2u);
    EXPECT_EQ(kv[0].key, "my-db=1");
    EXPECT_TRUE(kv[0].key_quoted);
    EXPECT_EQ(kv[0].value, "host=a");
    EXPECT_EQ(kv[1].key, "say \"hi\"");
    EXPECT_EQ(kv[1].value, "host=b");
}

TEST(ConfigIniParser, KeyOutsideSectionHasEmptySection) {
    auto c = parse_text("foo = 1\n");
    ASSERT_TRUE(c.status);
    ASSERT_EQ(c.entries.size(), 1u);
    EXPECT_EQ(c.entries[0].section, "");
}

TEST(ConfigIniParser, SectionHeaderMayCarryAComment) {
    auto c = parse_text("[users] ; per-user settings\n");
    ASSERT_TRUE(c.status);
    EXPECT_EQ(c.entries[0].section, "users");
}

TEST(ConfigIniParser, SyntaxErrorsNameFileAndLine) {
    struct Case {
        const char* text;
        const char* expected;
    };
    const Case cases[] = {
        {"[pgbouncer]\nlisten_port 6432\n", "test.ini:2: syntax error: expected 'name = value'"},
        {"[pgbouncer\n", "test.ini:1: malformed section header '[pgbouncer': missing ']'"},
        {"[pgbouncer] x\n",
         "test.ini:1: malformed section header '[pgbouncer] x': unexpected text after ']'"},
        {"[ ]\n", "test.ini:1: empty section name"},
        {"\n= 5\n", "test.ini:2: syntax error: missing name before '='"},
        {"[databases]\n\"foo = host=x\n", "test.ini:2: unterminated double quote in name"},
        {"[databases]\n\"foo\" host=x\n",
         "test.ini:2: syntax error: expected '=' after the quoted name \"foo\""},
        {"[databases]\n\"\" = host=x\n", "test.ini:2: empty name"},
        {"%include\n", "test.ini:1: %include needs a file name"},
        {"%exec rm -rf /\n", "test.ini:1: unknown directive '%exec'"},
    };
    for (const Case& c : cases) {
        auto result = parse_text(c.text);
        ASSERT_FALSE(result.status) << c.text;
        EXPECT_EQ(result.status.error().message.rfind(c.expected, 0), 0u)
            << "got: " << result.status.error().message << "\nwanted prefix: " << c.expected;
    }
}

TEST(ConfigIniParser, LongLinesAreShortenedInMessages) {
    auto result = parse_text(std::string(500, 'x') + "\n");
    ASSERT_FALSE(result.status);
    EXPECT_LT(result.status.error().message.size(), 200u);
}

TEST(ConfigIniParser, VisitorErrorStopsParsing) {
    int seen = 0;
    Status status = parse_ini_text("[a]\nx=1\ny=2\n", "t.ini", [&](const IniEntry& entry) -> Status {
        ++seen;
        if (entry.key == "x") return fail("stop here");
        return {};
    });
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().message, "stop here");
    EXPECT_EQ(seen, 2);
}

TEST(ConfigIniParser, MissingFile) {
    ScratchDir dir;
    std::string path = (dir.path() / "nope.ini").string();
    auto c = parse_file(path);
    ASSERT_FALSE(c.status);
    EXPECT_EQ(c.status.error().message, path + ": cannot read configuration file: No such file or directory");
}

TEST(ConfigIniParser, DirectoryIsNotAFile) {
    ScratchDir dir;
    auto c = parse_file(dir.path().string());
    ASSERT_FALSE(c.status);
    EXPECT_NE(c.status.error().message.find("is a directory"), std::string::npos);
}

TEST(ConfigIniParser, IncludeRelativeToIncludingFile) {
    ScratchDir dir;
    dir.write("conf.d/dbs.ini", "[databases]\nfoo = host=a\n%include more/users.ini\n");
    dir.write("conf.d/more/users.ini", "[users]\nalice = pool_mode=session\n");
    std::string top =
        dir.write("main.ini", "[pgbouncer]\nlisten_port = 1\n%include conf.d/dbs.ini\nverbose = 2\n");
    auto c = parse_file(top);
    ASSERT_TRUE(c.status) << c.status.error().message;
    auto kv = key_values(c);
    ASSERT_EQ(kv.size(), 4u);
    EXPECT_EQ(kv[0].key, "listen_port");
    EXPECT_EQ(kv[0].file, top);
    EXPECT_EQ(kv[1].key, "foo");
    EXPECT_EQ(kv[1].section, "databases");
    EXPECT_EQ(kv[1].file, (dir.path() / "conf.d/dbs.ini").string());
    EXPECT_EQ(kv[1].line, 2);
    EXPECT_EQ(kv[2].key, "alice");
    EXPECT_EQ(kv[2].section, "users");
    EXPECT_EQ(kv[2].file, (dir.path() / "conf.d/more/users.ini").string());
    // The section an included file ends in carries back out, as in PgBouncer.
    EXPECT_EQ(kv[3].key, "verbose");
    EXPECT_EQ(kv[3].section, "users");
    EXPECT_EQ(kv[3].line, 4);
}

TEST(ConfigIniParser, IncludeCarriesCurrentSectionIn) {
    ScratchDir dir;
    dir.write("part.ini", "max_client_conn = 5\n");
    std::string top = dir.write("main.ini", "[pgbouncer]\n%include part.ini\n");
    auto c = parse_file(top);
    ASSERT_TRUE(c.status);
    auto kv = key_values(c);
    ASSERT_EQ(kv.size(), 1u);
    EXPECT_EQ(kv[0].section, "pgbouncer");
}

TEST(ConfigIniParser, IncludeAbsoluteAndQuotedPath) {
    ScratchDir dir;
    std::string part = dir.write("with space.ini", "[pgbouncer]\nverbose = 1\n");
    auto c = parse_text("%include \"" + part + "\"\n", "/nonexistent/dir/x.ini");
    ASSERT_TRUE(c.status) << c.status.error().message;
    EXPECT_EQ(key_values(c).size(), 1u);
}

TEST(ConfigIniParser, IncludeLoopIsAnError) {
    ScratchDir dir;
    dir.write("a.ini", "[pgbouncer]\n%include b.ini\n");
    dir.write("b.ini", "verbose = 1\n%include ./a.ini\n");
    auto c = parse_file((dir.path() / "a.ini").string());
    ASSERT_FALSE(c.status);
    std::string b = (dir.path() / "b.ini").string();
    EXPECT_EQ(c.status.error().message.rfind(b + ":2: %include loop: ", 0), 0u) << c.status.error().message;
}

TEST(ConfigIniParser, SelfIncludeIsAnError) {
    ScratchDir dir;
    std::string a = dir.write("a.ini", "%include a.ini\n");
    auto c = parse_file(a);
    ASSERT_FALSE(c.status);
    EXPECT_NE(c.status.error().message.find("%include loop"), std::string::npos);
}

TEST(ConfigIniParser, IncludeDepthIsLimited) {
    ScratchDir dir;
    for (int i = 0; i < 30; ++i) {
        dir.write("f" + std::to_string(i) + ".ini", "%include f" + std::to_string(i + 1) + ".ini\n");
    }
    dir.write("f30.ini", "[pgbouncer]\n");
    auto c = parse_file((dir.path() / "f0.ini").string());
    ASSERT_FALSE(c.status);
    EXPECT_NE(c.status.error().message.find("%include nested more than 16 levels deep"), std::string::npos)
        << c.status.error().message;
}

TEST(ConfigIniParser, SameFileTwiceIsNotALoop) {
    ScratchDir dir;
    dir.write("part.ini", "verbose = 1\n");
    std::string top = dir.write("main.ini", "[pgbouncer]\n%include part.ini\n%include part.ini\n");
    auto c = parse_file(top);
    ASSERT_TRUE(c.status) << c.status.error().message;
    EXPECT_EQ(key_values(c).size(), 2u);
}

TEST(ConfigIniParser, MissingIncludeNamesIncludingLine) {
    ScratchDir dir;
    std::string top = dir.write("main.ini", "[pgbouncer]\n\n%include missing.ini\n");
    auto c = parse_file(top);
    ASSERT_FALSE(c.status);
    EXPECT_EQ(c.status.error().message, top + ":3: cannot read included file '" +
                                            (dir.path() / "missing.ini").string() +
                                            "': No such file or directory");
}

TEST(ConfigIniParser, ErrorInsideIncludedFileNamesThatFile) {
    ScratchDir dir;
    std::string part = dir.write("part.ini", "\n\nbroken line\n");
    std::string top = dir.write("main.ini", "%include part.ini\n");
    auto c = parse_file(top);
    ASSERT_FALSE(c.status);
    EXPECT_EQ(c.status.error().message.rfind(part + ":3: syntax error", 0), 0u) << c.status.error().message;
}

}  // namespace
}  // namespace poolguard::config
