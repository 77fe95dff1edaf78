// Tests the PostgreSQL MD5 authentication math in protocol/pg/md5_auth.
#include "protocol/pg/md5_auth.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>

namespace poolguard::protocol::pg {
namespace {

constexpr std::array<uint8_t, 4> kSalt{0x01, 0x02, 0x03, 0x04};
constexpr std::array<uint8_t, 4> kSaltWithNul{0xde, 0xad, 0x00, 0xff};

TEST(Md5Auth, HexDigestMatchesKnownVectors) {
    EXPECT_EQ(md5_hex(""), "d41d8cd98f00b204e9800998ecf8427e");
    EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
    EXPECT_EQ(md5_hex(std::string_view("a\0b", 3)), md5_hex(std::string("a\0b", 3)));
    EXPECT_NE(md5_hex(std::string_view("a\0b", 3)), md5_hex("a"));
}

TEST(Md5Auth, PasswordSecretMatchesPostgres) {
    // SELECT 'md5' || md5('pgpass' || 'postgres') on PostgreSQL 15.
    EXPECT_EQ(md5_password_secret("postgres", "pgpass"), "md5dbd684f46e48df010e72af649d747932");
    // pg_authid.rolpassword after SET password_encryption = 'md5'; CREATE ROLE postgres_md5 PASSWORD
    // 'pgpass'.
    EXPECT_EQ(md5_password_secret("postgres_md5", "pgpass"), "md5b02b1c3027d63bc96f22318573a924b4");
}

TEST(Md5Auth, RecognizesStoredMd5Secrets) {
    EXPECT_TRUE(is_md5_secret("md5dbd684f46e48df010e72af649d747932"));
    EXPECT_FALSE(is_md5_secret("md5DBD684F46E48DF010E72AF649D747932"));   // PostgreSQL: lowercase only
    EXPECT_FALSE(is_md5_secret("md5dbd684f46e48df010e72af649d74793"));    // 31 hex digits
    EXPECT_FALSE(is_md5_secret("md5dbd684f46e48df010e72af649d7479322"));  // 33 hex digits
    EXPECT_FALSE(is_md5_secret("md5dbd684f46e48df010e72af649d74793g"));
    EXPECT_FALSE(is_md5_secret("xyzdbd684f46e48df010e72af649d747932"));
    EXPECT_FALSE(is_md5_secret("md5"));
    EXPECT_FALSE(is_md5_secret(""));
}

TEST(Md5Auth, SaltedResponseMatchesIndependentComputation) {
    // "md5" + md5(md5("pgpass" + "postgres") + salt), computed with Python's hashlib.
    EXPECT_EQ(md5_salted_response("pgpass", "postgres", kSalt), "md52baba7ce3b7db54971dac71751d0f5f1");
    EXPECT_EQ(md5_salted_response("pgpass", "postgres", kSaltWithNul), "md5698a8d424b103cd220919e65b7249b5c");
}

TEST(Md5Auth, SaltedResponseFromStoredSecretEqualsFromPassword) {
    const std::string secret = md5_password_secret("alice", "wonderland");
    EXPECT_EQ(md5_salted_response(secret, "alice", kSalt), md5_salted_response("wonderland", "alice", kSalt));
    EXPECT_EQ(md5_salted_response(secret, "alice", kSalt).size(), 35u);
}

TEST(Md5Auth, VerifyAcceptsCorrectAnswerForPlainAndMd5Secrets) {
    const std::string answer = md5_salted_response("wonderland", "alice", kSalt);
    EXPECT_TRUE(md5_verify(answer, "wonderland", "alice", kSalt));
    EXPECT_TRUE(md5_verify(answer, md5_password_secret("alice", "wonderland"), "alice", kSalt));
}

TEST(Md5Auth, VerifyRejectsWrongAnswers) {
    const std::string secret = md5_password_secret("alice", "wonderland");
    const std::string answer = md5_salted_response(secret, "alice", kSalt);
    EXPECT_FALSE(md5_verify(md5_salted_response("wrong", "alice", kSalt), secret, "alice", kSalt));
    EXPECT_FALSE(md5_verify(answer, secret, "alice", kSaltWithNul));  // a replay under another salt
    EXPECT_FALSE(md5_verify(answer, "wonderland", "bob", kSalt));
    EXPECT_FALSE(md5_verify("", secret, "alice", kSalt));
    EXPECT_FALSE(md5_verify(answer.substr(0, 34), secret, "alice", kSalt));
    EXPECT_FALSE(md5_verify(answer + "0", secret, "alice", kSalt));
    EXPECT_FALSE(md5_verify("wonderland", secret, "alice", kSalt));  // a cleartext answer is not accepted
}

TEST(Md5Auth, Md5SecretAlreadyContainsTheUser) {
    // An "md5..." secret hashes the user name in, so the `user` argument only matters for plain secrets
    // (the caller looked the secret up by user name). PostgreSQL behaves the same.
    const std::string secret = md5_password_secret("alice", "wonderland");
    const std::string answer = md5_salted_response(secret, "alice", kSalt);
    EXPECT_TRUE(md5_verify(answer, secret, "bob", kSalt));
    EXPECT_FALSE(md5_verify(answer, md5_password_secret("bob", "wonderland"), "bob", kSalt));
}

TEST(Md5Auth, VerifyNeverAcceptsAgainstScramSecret) {
    // Treating a SCRAM secret as a plain password would let whoever stole the secret log in with MD5.
    const std::string scram =
        "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==$giITDaSRRl3I8MwKWJEDYB7C1ptTKiSNRtdiLdDKADk=:"
        "bc6gF4KhNPiF4+d26jiZQTTuACNWT0Q+ywti4aetRuA=";
    EXPECT_FALSE(md5_verify(md5_salted_response(scram, "scram_user", kSalt), scram, "scram_user", kSalt));
}

}  // namespace
}  // namespace poolguard::protocol::pg
