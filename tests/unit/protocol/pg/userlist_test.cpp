// Tests the PgBouncer auth_file parser and secret classification in protocol/pg/userlist.
#include "protocol/pg/userlist.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace poolguard::protocol::pg {
namespace {

constexpr std::string_view kScram =
    "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==$giITDaSRRl3I8MwKWJEDYB7C1ptTKiSNRtdiLdDKADk=:"
    "bc6gF4KhNPiF4+d26jiZQTTuACNWT0Q+ywti4aetRuA=";

TEST(ClassifySecret, Kinds) {
    EXPECT_EQ(classify_secret("md5dbd684f46e48df010e72af649d747932"), SecretKind::kMd5);
    EXPECT_EQ(classify_secret(kScram), SecretKind::kScramSha256);
    EXPECT_EQ(classify_secret("SCRAM-SHA-256$broken"), SecretKind::kScramSha256);
    EXPECT_EQ(classify_secret("plain password"), SecretKind::kPlain);
    EXPECT_EQ(classify_secret(""), SecretKind::kPlain);
    EXPECT_EQ(classify_secret("md5"), SecretKind::kPlain);
    EXPECT_EQ(classify_secret("md5DBD684F46E48DF010E72AF649D747932"), SecretKind::kPlain);
    EXPECT_EQ(classify_secret("md5dbd684f46e48df010e72af649d74793"), SecretKind::kPlain);
    EXPECT_EQ(classify_secret("scram-sha-256$4096:x"), SecretKind::kPlain);
}

TEST(ParseUserlist, ParsesPgBouncerFormat) {
    const std::string text = std::string(
                                 "; PgBouncer comment\n"
                                 "# hash comment\n"
                                 "\n"
                                 "   \t\n"
                                 "\"alice\" \"wonderland\"\n"
                                 "  \"bob\"\t\"md5dbd684f46e48df010e72af649d747932\" \"extra\" ignored\n"
                                 "\"carol\" \"") +
                             std::string(kScram) +
                             "\"\r\n"
                             "\"quo\"\"ted\" \"pa\"\"ss \"\"word\"\"\"\n"
                             "\"empty\" \"\"\n"
                             "\"spaces in name\" \"spaces in password\"\n"
                             "\"semi;colon\" \"#hash\"\n"
                             "\"last\" \"no newline\"";
    auto users = parse_userlist(text, "userlist.txt");
    ASSERT_TRUE(users.has_value()) << users.error().message;
    EXPECT_EQ(users->size(), 8u);
    EXPECT_EQ(users->at("alice"), "wonderland");
    EXPECT_EQ(users->at("bob"), "md5dbd684f46e48df010e72af649d747932");
    EXPECT_EQ(users->at("carol"), kScram);
    EXPECT_EQ(users->at("quo\"ted"), "pa\"ss \"word\"");
    EXPECT_EQ(users->at("empty"), "");
    EXPECT_EQ(users->at("spaces in name"), "spaces in password");
    EXPECT_EQ(users->at("semi;colon"), "#hash");
    EXPECT_EQ(users->at("last"), "no newline");
}

TEST(ParseUserlist, EmptyAndCommentOnlyFiles) {
    EXPECT_TRUE(parse_userlist("", "f").value().empty());
    EXPECT_TRUE(parse_userlist("\n\n; nothing\n# here\n", "f").value().empty());
}

TEST(ParseUserlist, SkipsUtf8ByteOrderMark) {
    auto users = parse_userlist("\xEF\xBB\xBF\"u\" \"p\"\n", "f");
    ASSERT_TRUE(users.has_value());
    EXPECT_EQ(users->at("u"), "p");
}

TEST(ParseUserlist, LaterEntryReplacesEarlier) {
    auto users = parse_userlist("\"u\" \"first\"\n\"u\" \"second\"\n", "f");
    ASSERT_TRUE(users.has_value());
    EXPECT_EQ(users->size(), 1u);
    EXPECT_EQ(users->at("u"), "second");
}

TEST(ParseUserlist, KeepsNonAsciiBytes) {
    auto users = parse_userlist("\"j\xC3\xBCrgen\" \"p\xC3\xA4ss\"\n", "f");
    ASSERT_TRUE(users.has_value());
    EXPECT_EQ(users->at("j\xC3\xBCrgen"), "p\xC3\xA4ss");
}

TEST(ParseUserlist, ErrorsNameFileAndLine) {
    struct Case {
        std::string text;
        std::string location;
    };
    const std::vector<Case> cases = {
        {"alice \"pw\"\n", "auth.txt:1: "},
        {"; ok\n\"alice\" pw\n", "auth.txt:2: "},
        {"\"alice\"\n", "auth.txt:1: "},
        {"\"alice\" \n", "auth.txt:1: "},
        {"\n\n\"alice \"pw\"\n", "auth.txt:3: "},  // user "alice ", then an unquoted password
        {"\"alice\" \"pw\n\"\n", "auth.txt:1: "},  // fields do not span lines
        {"\"alice\" \"pw\"\n\"bob\n", "auth.txt:2: "},
        {"\"\" \"pw\"\n", "auth.txt:1: "},
        {"\"alice\"x\"pw\"\n", "auth.txt:1: "},
        {"\"carol\" \"SCRAM-SHA-256$4096:bad\"\n", "auth.txt:1: "},
        {std::string("\"al\0ice\" \"pw\"\n", 14), "auth.txt:1: "},
    };
    for (const auto& c : cases) {
        auto users = parse_userlist(c.text, "auth.txt");
        ASSERT_FALSE(users.has_value()) << c.text;
        EXPECT_TRUE(users.error().message.starts_with(c.location))
            << c.text << " -> " << users.error().message;
    }
}

TEST(ParseUserlist, MalformedScramSecretErrorNamesUser) {
    auto users = parse_userlist("\"ok\" \"pw\"\n\"carol\" \"SCRAM-SHA-256$0:AAAA$AAAA:AAAA\"\n", "auth.txt");
    ASSERT_FALSE(users.has_value());
    EXPECT_NE(users.error().message.find("auth.txt:2:"), std::string::npos);
    EXPECT_NE(users.error().message.find("carol"), std::string::npos);
}

class LoadUserlist : public ::testing::Test {
  protected:
    void TearDown() override {
        if (!path_.empty()) std::remove(path_.c_str());
    }
    std::string write_file(std::string_view contents) {
        path_ = ::testing::TempDir() + "poolguard_userlist_test_" + std::to_string(::getpid()) + ".txt";
        std::FILE* f = std::fopen(path_.c_str(), "wb");
        EXPECT_NE(f, nullptr);
        if (f != nullptr) {
            std::fwrite(contents.data(), 1, contents.size(), f);
            std::fclose(f);
        }
        return path_;
    }
    std::string path_;
};

TEST_F(LoadUserlist, LoadsFile) {
    const std::string path = write_file("\"alice\" \"wonderland\"\n\"bob\" \"builder\"\n");
    auto users = load_userlist(path);
    ASSERT_TRUE(users.has_value()) << users.error().message;
    EXPECT_EQ(users->size(), 2u);
    EXPECT_EQ(users->at("bob"), "builder");
}

TEST_F(LoadUserlist, ErrorsUseThePath) {
    const std::string path = write_file("\"alice\" \"wonderland\"\nbroken\n");
    auto users = load_userlist(path);
    ASSERT_FALSE(users.has_value());
    EXPECT_TRUE(users.error().message.starts_with(path + ":2: ")) << users.error().message;
}

TEST_F(LoadUserlist, MissingFileIsAnError) {
    auto users = load_userlist("/nonexistent/poolguard/userlist.txt");
    ASSERT_FALSE(users.has_value());
    EXPECT_NE(users.error().message.find("/nonexistent/poolguard/userlist.txt"), std::string::npos);
}

TEST_F(LoadUserlist, DirectoryIsAnError) {
    auto users = load_userlist(::testing::TempDir());
    EXPECT_FALSE(users.has_value());
}

}  // namespace
}  // namespace poolguard::protocol::pg
