// Tests SCRAM-SHA-256 in protocol/pg/scram: RFC 7677 vectors, PostgreSQL secrets, both sides, bad input.
#include "protocol/pg/scram.h"

#include <gtest/gtest.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

namespace poolguard::protocol::pg {
namespace {

// RFC 7677 section 3 example: user "user", password "pencil".
constexpr std::string_view kRfcClientNonce = "rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr std::string_view kRfcSaltB64 = "W22ZaJ0SNY7soEsUEjb6gQ==";
constexpr std::string_view kRfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr std::string_view kRfcServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr std::string_view kRfcClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+"
    "Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr std::string_view kRfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

// pg_authid.rolpassword from PostgreSQL 15 after SET password_encryption = 'scram-sha-256'.
struct PgSecret {
    const char* password;
    const char* secret;
};
const PgSecret kPgSecrets[] = {
    {"pencil",
     "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==$giITDaSRRl3I8MwKWJEDYB7C1ptTKiSNRtdiLdDKADk=:"
     "bc6gF4KhNPiF4+d26jiZQTTuACNWT0Q+ywti4aetRuA="},
    {"sekr1t, with \"quotes\" and = signs",
     "SCRAM-SHA-256$4096:3LH2VWUal8ymGwkFXb8QXQ==$TJF0CaCXYjmbNYkRs0Idx5MhnPYB46MdHmHuSgA0Jqo=:"
     "rvjjPKLL4udJIMbIQnHJWnq1jv6d8XR53kTUNgufk3o="},
    // Non-ASCII but already NFKC-normalized (precomposed UTF-8), so SASLprep leaves it unchanged.
    {"p\xC3\xA4ssw\xC3\xB6rd",
     "SCRAM-SHA-256$4096:j6XNG9gna4eQwYz+kYGDMw==$IiTTLJWKTyFOpF6UWhLhQiurmIUAZFdwUXhvNsxTJNY=:"
     "Leiei/dY/uNZ4gLewdQIO2iYlzcp4e99jGDwKy9Y75A="},
};

ScramSecret rfc_secret() {
    auto salt = base64_decode(kRfcSaltB64);
    EXPECT_TRUE(salt.has_value());
    return make_scram_secret("pencil", salt.value_or(""), 4096);
}

// Runs a full exchange between a client and a server; returns the first error, if any.
Status run_exchange(ScramClient& client, ScramServer& server) {
    auto server_first = server.handle_client_first(client.client_first_message());
    if (!server_first) return std::unexpected(server_first.error());
    auto client_final = client.handle_server_first(*server_first);
    if (!client_final) return std::unexpected(client_final.error());
    auto server_final = server.handle_client_final(*client_final);
    if (!server_final) return std::unexpected(server_final.error());
    return client.verify_server_final(*server_final);
}

// ---- base64 ----------------------------------------------------------------------------------------

TEST(ScramBase64, EncodesRfc4648Vectors) {
    EXPECT_EQ(base64_encode(std::string_view("")), "");
    EXPECT_EQ(base64_encode(std::string_view("f")), "Zg==");
    EXPECT_EQ(base64_encode(std::string_view("fo")), "Zm8=");
    EXPECT_EQ(base64_encode(std::string_view("foo")), "Zm9v");
    EXPECT_EQ(base64_encode(std::string_view("foob")), "Zm9vYg==");
    EXPECT_EQ(base64_encode(std::string_view("fooba")), "Zm9vYmE=");
    EXPECT_EQ(base64_encode(std::string_view("foobar")), "Zm9vYmFy");
    EXPECT_EQ(base64_encode(std::string_view("n,,")), "biws");
}

TEST(ScramBase64, RoundTripsAllByteValues) {
    std::string all;
    for (int i = 0; i < 256; ++i)
        all += static_cast<char>(i);
    for (std::size_t len = 0; len <= all.size(); len += 37) {
        const std::string data = all.substr(0, len);
        auto decoded = base64_decode(base64_encode(data));
        ASSERT_TRUE(decoded.has_value()) << len;
        EXPECT_EQ(*decoded, data);
    }
}

TEST(ScramBase64, DecodeRejectsMalformedInput) {
    for (std::string_view bad :
         {"Zg=", "Zg", "Z===", "====", "Zg==Zg==", "Zm9v\n", "Zm 9v", "Zm9", "Zm9v!AAA", "Zg=a", "=Zm9"}) {
        EXPECT_FALSE(base64_decode(bad).has_value()) << bad;
    }
    EXPECT_EQ(base64_decode("").value(), "");
}

// ---- secrets ---------------------------------------------------------------------------------------

TEST(ScramSecretTest, MatchesSecretsComputedByPostgres) {
    for (const auto& pg : kPgSecrets) {
        auto parsed = parse_scram_secret(pg.secret);
        ASSERT_TRUE(parsed.has_value()) << pg.secret << ": " << parsed.error().message;
        EXPECT_EQ(parsed->iterations, 4096);
        EXPECT_EQ(parsed->salt.size(), 16u);
        EXPECT_EQ(make_scram_secret(pg.password, parsed->salt, parsed->iterations), *parsed) << pg.password;
        EXPECT_EQ(format_scram_secret(*parsed), pg.secret);
    }
}

TEST(ScramSecretTest, KnownLimitationNonNfkcPasswordIsNotNormalized) {
    // PostgreSQL applies SASLprep (NFKC): the ligature U+FB01 in "\xEF\xAC\x81x" becomes "fix". poolguard
    // uses the bytes as-is, so its secret differs. Flip this test if SASLprep is ever implemented.
    auto pg = parse_scram_secret(
        "SCRAM-SHA-256$4096:lveZZHUYZhRRpM0bWBzZlA==$xIOX+k5mmqHVZw2ojAPLSP4H44LQEP9GVZEN+5r0mnM=:"
        "yufE9KIppBlgXTCYVD1T+6HNP55DFd1iOhfChuMPqlU=");
    ASSERT_TRUE(pg.has_value());
    EXPECT_NE(make_scram_secret("\xEF\xAC\x81x", pg->salt, pg->iterations), *pg);
    EXPECT_EQ(make_scram_secret("fix", pg->salt, pg->iterations), *pg);
}

TEST(ScramSecretTest, RfcVectorKeys) {
    const ScramSecret secret = rfc_secret();
    EXPECT_EQ(secret.iterations, 4096);
    EXPECT_EQ(base64_encode(secret.salt), kRfcSaltB64);
    auto reparsed = parse_scram_secret(format_scram_secret(secret));
    ASSERT_TRUE(reparsed.has_value());
    EXPECT_EQ(*reparsed, secret);
}

TEST(ScramSecretTest, ParseRejectsMalformedSecrets) {
    const std::string key = "giITDaSRRl3I8MwKWJEDYB7C1ptTKiSNRtdiLdDKADk=";
    const std::string short_key = "Zm9vYmFy";
    const std::vector<std::string> bad = {
        "",
        "SCRAM-SHA-256$",
        "SCRAM-SHA-1$4096:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key,
        "scram-sha-256$4096:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key,
        "SCRAM-SHA-256$0:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key,
        "SCRAM-SHA-256$-1:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key,
        "SCRAM-SHA-256$+4096:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key,
        "SCRAM-SHA-256$4096x:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key,
        "SCRAM-SHA-256$99999999999:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key,
        "SCRAM-SHA-256$:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key,
        "SCRAM-SHA-256$4096$" + key + ":" + key,
        "SCRAM-SHA-256$4096:$" + key + ":" + key,
        "SCRAM-SHA-256$4096:not*base64$" + key + ":" + key,
        "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==" + key + ":" + key,
        "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==$" + key,
        "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==$" + short_key + ":" + key,
        "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + short_key,
        "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key + "$",
        "SCRAM-SHA-256$4096:JRjEDT3F1da7kS4GStlVqw==$" + key + ":" + key + ":" + key,
    };
    for (const auto& text : bad) {
        auto parsed = parse_scram_secret(text);
        EXPECT_FALSE(parsed.has_value()) << text;
        if (!parsed) {
            EXPECT_NE(parsed.error().message.find("invalid SCRAM-SHA-256 secret"), std::string::npos);
        }
    }
}

TEST(ScramSecretTest, SecretForPlainPasswordUsesRandomSaltAnd4096Iterations) {
    const ScramSecret a = scram_secret_for_plain_password("hunter2");
    const ScramSecret b = scram_secret_for_plain_password("hunter2");
    EXPECT_EQ(a.iterations, 4096);
    EXPECT_EQ(a.salt.size(), 16u);
    EXPECT_NE(a.salt, b.salt);
    EXPECT_EQ(make_scram_secret("hunter2", a.salt, 4096), a);
}

// ---- RFC 7677 vector -------------------------------------------------------------------------------

TEST(ScramRfc7677, ServerSideProducesRfcMessages) {
    ScramServer server(rfc_secret(), std::string(kRfcServerNonce));
    auto server_first = server.handle_client_first(kRfcClientFirst);
    ASSERT_TRUE(server_first.has_value()) << server_first.error().message;
    EXPECT_EQ(*server_first, kRfcServerFirst);
    auto server_final = server.handle_client_final(kRfcClientFinal);
    ASSERT_TRUE(server_final.has_value()) << server_final.error().message;
    EXPECT_EQ(*server_final, kRfcServerFinal);
    EXPECT_TRUE(server.authenticated());
    ASSERT_TRUE(server.client_key().has_value());
    const ScramKey salted = scram_salted_password("pencil", rfc_secret().salt, 4096);
    EXPECT_EQ(*server.client_key(), hmac_sha256(salted, "Client Key"));
}

TEST(ScramRfc7677, ClientSideProducesRfcMessages) {
    ScramClient client("pencil", std::string(kRfcClientNonce), "user");
    EXPECT_EQ(client.client_first_message(), kRfcClientFirst);
    auto client_final = client.handle_server_first(kRfcServerFirst);
    ASSERT_TRUE(client_final.has_value()) << client_final.error().message;
    EXPECT_EQ(*client_final, kRfcClientFinal);
    EXPECT_TRUE(client.verify_server_final(kRfcServerFinal).has_value());
}

TEST(ScramRfc7677, PassThroughClientWithRecoveredKeysProducesRfcMessages) {
    const ScramKey salted = scram_salted_password("pencil", rfc_secret().salt, 4096);
    ScramClient client = ScramClient::from_keys(
        hmac_sha256(salted, "Client Key"), hmac_sha256(salted, "Server Key"), std::string(kRfcClientNonce));
    EXPECT_EQ(client.client_first_message(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
    // The user name is part of AuthMessage, so with "n=" the proof differs from the RFC's; the server side
    // accepts it all the same (PostgreSQL ignores the name).
    ScramServer server(rfc_secret(), std::string(kRfcServerNonce));
    auto server_first = server.handle_client_first(client.client_first_message());
    ASSERT_TRUE(server_first.has_value());
    EXPECT_EQ(*server_first, kRfcServerFirst);
    auto client_final = client.handle_server_first(*server_first);
    ASSERT_TRUE(client_final.has_value());
    auto server_final = server.handle_client_final(*client_final);
    ASSERT_TRUE(server_final.has_value()) << server_final.error().message;
    EXPECT_TRUE(client.verify_server_final(*server_final).has_value());
}

// ---- full exchanges --------------------------------------------------------------------------------

TEST(ScramExchange, DefaultMessagesHavePostgresShape) {
    ScramClient client("pw");
    const std::string first = client.client_first_message();
    ASSERT_TRUE(first.starts_with("n,,n=,r="));
    EXPECT_EQ(first.size(), std::string("n,,n=,r=").size() + 32);  // 24 random bytes in base64
    EXPECT_EQ(client.client_first_message(), first);               // idempotent
    EXPECT_NE(ScramClient("pw").client_first_message(), first);

    ScramServer server(make_scram_secret("pw", "0123456789abcdef", 4096));
    auto server_first = server.handle_client_first(first);
    ASSERT_TRUE(server_first.has_value());
    const std::string nonce_prefix = "r=" + first.substr(std::string("n,,n=,r=").size());
    ASSERT_TRUE(server_first->starts_with(nonce_prefix));
    const std::string tail = ",s=MDEyMzQ1Njc4OWFiY2RlZg==,i=4096";
    EXPECT_EQ(server_first->size(), nonce_prefix.size() + 24 + tail.size());  // 18 random bytes in base64
    EXPECT_TRUE(server_first->ends_with(tail));
}

TEST(ScramExchange, RoundTripSucceedsWithStoredSecret) {
    const ScramSecret secret = make_scram_secret("correct horse battery staple", "saltsaltsaltsalt", 4096);
    ScramClient client("correct horse battery staple");
    ScramServer server(secret);
    ASSERT_TRUE(run_exchange(client, server).has_value());
    EXPECT_TRUE(server.authenticated());
    const ScramKey salted = scram_salted_password("correct horse battery staple", "saltsaltsaltsalt", 4096);
    ASSERT_TRUE(server.client_key().has_value());
    EXPECT_EQ(*server.client_key(), hmac_sha256(salted, "Client Key"));
    EXPECT_EQ(sha256(*server.client_key()), secret.stored_key);
}

TEST(ScramExchange, RoundTripSucceedsAgainstPostgresSecrets) {
    for (const auto& pg : kPgSecrets) {
        auto secret = parse_scram_secret(pg.secret);
        ASSERT_TRUE(secret.has_value());
        ScramClient client(pg.password);
        ScramServer server(*secret);
        auto status = run_exchange(client, server);
        EXPECT_TRUE(status.has_value()) << pg.password << ": " << status.error().message;
    }
}

TEST(ScramExchange, RoundTripSucceedsWithPlainPasswordSecret) {
    ScramClient client("plain pass");
    ScramServer server(scram_secret_for_plain_password("plain pass"));
    EXPECT_TRUE(run_exchange(client, server).has_value());
}

TEST(ScramExchange, EmptyPasswordWorks) {
    ScramClient client("");
    ScramServer server(make_scram_secret("", "salt", 4096));
    EXPECT_TRUE(run_exchange(client, server).has_value());
}

TEST(ScramExchange, WrongPasswordFailsWith28P01) {
    ScramClient client("wrong");
    ScramServer server(make_scram_secret("right", "saltsaltsaltsalt", 4096));
    auto server_first = server.handle_client_first(client.client_first_message());
    ASSERT_TRUE(server_first.has_value());
    auto client_final = client.handle_server_first(*server_first);
    ASSERT_TRUE(client_final.has_value());
    auto server_final = server.handle_client_final(*client_final);
    ASSERT_FALSE(server_final.has_value());
    EXPECT_EQ(server_final.error().sqlstate, "28P01");
    EXPECT_EQ(server_final.error().message, "password authentication failed");
    EXPECT_FALSE(server.authenticated());
    EXPECT_FALSE(server.client_key().has_value());
    // A failed exchange stays failed.
    EXPECT_FALSE(server.handle_client_final(*client_final).has_value());
}

TEST(ScramExchange, PassThroughWithRecoveredClientKey) {
    // Client -> poolguard: poolguard recovers ClientKey. poolguard -> server: logs in with it.
    const ScramSecret secret = make_scram_secret("s3cret", "0123456789abcdef", 4096);
    ScramClient real_client("s3cret");
    ScramServer pooler_front(secret);
    ASSERT_TRUE(run_exchange(real_client, pooler_front).has_value());
    ASSERT_TRUE(pooler_front.client_key().has_value());

    ScramClient pooler_back = ScramClient::from_keys(*pooler_front.client_key(), secret.server_key);
    ScramServer postgres(secret);
    EXPECT_TRUE(run_exchange(pooler_back, postgres).has_value());

    // Wrong keys fail at the server.
    ScramKey bad_key = *pooler_front.client_key();
    bad_key[0] ^= 1;
    ScramClient bad_back = ScramClient::from_keys(bad_key, secret.server_key);
    ScramServer postgres2(secret);
    auto status = run_exchange(bad_back, postgres2);
    ASSERT_FALSE(status.has_value());
    EXPECT_EQ(status.error().sqlstate, "28P01");
}

TEST(ScramExchange, TamperedServerSignatureIsRejected) {
    const ScramSecret secret = make_scram_secret("pw", "saltsaltsaltsalt", 4096);
    ScramClient client("pw");
    ScramServer server(secret);
    auto server_first = server.handle_client_first(client.client_first_message());
    ASSERT_TRUE(server_first.has_value());
    auto client_final = client.handle_server_first(*server_first);
    ASSERT_TRUE(client_final.has_value());
    auto server_final = server.handle_client_final(*client_final);
    ASSERT_TRUE(server_final.has_value());

    auto signature = base64_decode(server_final->substr(2));
    ASSERT_TRUE(signature.has_value());
    (*signature)[5] ^= 0x40;
    auto status = client.verify_server_final("v=" + base64_encode(*signature));
    ASSERT_FALSE(status.has_value());
    EXPECT_EQ(status.error().sqlstate, "28000");
    // No second chance after a failure.
    EXPECT_FALSE(client.verify_server_final(*server_final).has_value());
}

TEST(ScramExchange, ServerWithWrongServerKeyIsRejectedByClient) {
    // A server (or man in the middle) that has StoredKey but not ServerKey cannot prove itself.
    ScramSecret secret = make_scram_secret("pw", "saltsaltsaltsalt", 4096);
    secret.server_key[0] ^= 1;
    ScramClient client("pw");
    ScramServer server(secret);
    auto status = run_exchange(client, server);
    ASSERT_FALSE(status.has_value());
    EXPECT_EQ(status.error().sqlstate, "28000");
}

TEST(ScramExchange, ServerErrorAttributeBecomesError) {
    auto prepare = [](ScramClient& client) {
        ScramServer server(make_scram_secret("pw", "saltsaltsaltsalt", 4096));
        auto server_first = server.handle_client_first(client.client_first_message());
        ASSERT_TRUE(server_first.has_value());
        ASSERT_TRUE(client.handle_server_first(*server_first).has_value());
    };
    ScramClient a("pw");
    prepare(a);
    auto status = a.verify_server_final("e=invalid-proof");
    ASSERT_FALSE(status.has_value());
    EXPECT_EQ(status.error().sqlstate, "28P01");
    EXPECT_NE(status.error().message.find("invalid-proof"), std::string::npos);

    ScramClient b("pw");
    prepare(b);
    status = b.verify_server_final("e=other-error");
    ASSERT_FALSE(status.has_value());
    EXPECT_EQ(status.error().sqlstate, "28000");
}

TEST(ScramExchange, ClientEscapesUserNameAndServerToleratesAnyName) {
    ScramClient client("pw", "abc", "a=b,c");
    EXPECT_EQ(client.client_first_message(), "n,,n=a=3Db=2Cc,r=abc");
    ScramServer server(make_scram_secret("pw", "saltsaltsaltsalt", 4096));
    EXPECT_TRUE(run_exchange(client, server).has_value());
}

TEST(ScramExchange, ServerAcceptsYFlagAndExtensions) {
    // A client that supports channel binding but thinks we do not ("y,,") must bind "y,," in c=.
    const ScramSecret secret = make_scram_secret("pw", "saltsaltsaltsalt", 4096);
    ScramServer server(secret, "SERVERNONCE");
    const std::string bare = "n=whoever,r=clientnonce,x=some-extension";
    auto server_first = server.handle_client_first("y,," + bare);
    ASSERT_TRUE(server_first.has_value()) << server_first.error().message;
    EXPECT_EQ(*server_first, "r=clientnonceSERVERNONCE,s=c2FsdHNhbHRzYWx0c2FsdA==,i=4096");

    const std::string without_proof = "c=eSws,r=clientnonceSERVERNONCE";
    const std::string auth = bare + "," + *server_first + "," + without_proof;
    const ScramKey salted = scram_salted_password("pw", secret.salt, secret.iterations);
    const ScramKey client_key = hmac_sha256(salted, "Client Key");
    const ScramKey signature = hmac_sha256(sha256(client_key), auth);
    ScramKey proof{};
    for (std::size_t i = 0; i < proof.size(); ++i)
        proof[i] = client_key[i] ^ signature[i];

    auto server_final = server.handle_client_final(without_proof + ",p=" + base64_encode(proof));
    ASSERT_TRUE(server_final.has_value()) << server_final.error().message;
    EXPECT_EQ(*server_final, "v=" + base64_encode(hmac_sha256(secret.server_key, auth)));
}

TEST(ScramExchange, MockSecretFailsLikeWrongPassword) {
    const ScramSecret mock = scram_mock_secret("nobody", "per-process-random");
    EXPECT_EQ(mock.iterations, 4096);
    EXPECT_EQ(mock.salt.size(), 16u);
    EXPECT_EQ(scram_mock_secret("nobody", "per-process-random"), mock);
    EXPECT_NE(scram_mock_secret("somebody", "per-process-random").salt, mock.salt);
    EXPECT_NE(scram_mock_secret("nobody", "other-process").salt, mock.salt);

    for (const char* password : {"", "guess", "nobody"}) {
        ScramClient client(password);
        ScramServer server(mock);
        auto status = run_exchange(client, server);
        ASSERT_FALSE(status.has_value());
        EXPECT_EQ(status.error().sqlstate, "28P01");
        EXPECT_EQ(status.error().message, "password authentication failed");
    }
}

// ---- malformed input: server side ------------------------------------------------------------------

TEST(ScramServerMalformed, ClientFirstErrors) {
    struct Case {
        std::string message;
        std::string sqlstate;
    };
    const std::vector<Case> cases = {
        {"", "08P01"},
        {"n", "08P01"},
        {"n,", "08P01"},
        {"n,,", "08P01"},
        {"x,,n=,r=abc", "08P01"},
        {"nn,,n=,r=abc", "08P01"},
        {"p=tls-server-end-point,,n=,r=abc", "08P01"},
        {"p,,n=,r=abc", "08P01"},
        {"n,a=someone,n=,r=abc", "0A000"},
        {"n,zz,n=,r=abc", "08P01"},
        {"n,,m=ext,n=,r=abc", "0A000"},
        {"n,,r=abc", "08P01"},
        {"n,,n=", "08P01"},
        {"n,,n=user", "08P01"},
        {"n,,n=,r=", "08P01"},
        {"n,,n=,x=abc", "08P01"},
        {"n,,n=,r=ab c", "08P01"},
        {"n,,n=,r=ab\x01", "08P01"},
        {std::string("n,,n=,r=ab\0cd", 13), "08P01"},
        {"n,,n=,r=ab\xff", "08P01"},
        {"n,,n=,r=abc,", "08P01"},
        {"n,,n=,r=abc,cd", "08P01"},
        {"n,,n=,r=abc,1=x", "08P01"},
    };
    for (const auto& c : cases) {
        ScramServer server(make_scram_secret("pw", "salt", 1));
        auto result = server.handle_client_first(c.message);
        ASSERT_FALSE(result.has_value()) << c.message;
        EXPECT_EQ(result.error().sqlstate, c.sqlstate) << c.message << ": " << result.error().message;
        EXPECT_FALSE(server.handle_client_final("c=biws,r=abc,p=AAAA").has_value());
    }
}

class ScramServerFinal : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(server_.handle_client_first("n,,n=,r=cnonce").has_value());
        client_ = std::make_unique<ScramClient>("pw", "cnonce");
        client_->client_first_message();
        valid_final_ = client_->handle_server_first("r=cnonceSNONCE,s=c2FsdA==,i=1").value();
    }
    ScramServer server_{make_scram_secret("pw", "salt", 1), "SNONCE"};
    std::unique_ptr<ScramClient> client_;
    std::string valid_final_;
};

TEST_F(ScramServerFinal, ValidFinalIsAccepted) {
    EXPECT_TRUE(server_.handle_client_final(valid_final_).has_value());
}

TEST_F(ScramServerFinal, ClientFinalErrors) {
    const std::string proof = valid_final_.substr(valid_final_.find(",p="));
    const std::vector<std::string> cases = {
        "",
        "c=biws",
        "c=biws,r=cnonceSNONCE",
        "c=biws,r=cnonceSNONCE,p=",
        "c=biws,r=cnonceSNONCE,p=!!!!",
        "c=biws,r=cnonceSNONCE,p=Zm9vYmFy",  // proof of the wrong length
        "r=cnonceSNONCE,c=biws" + proof,
        "c=eSws,r=cnonceSNONCE" + proof,  // "y,," but the client sent "n,,"
        "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=cnonceSNONCE" + proof,
        "c=biw,r=cnonceSNONCE" + proof,
        "c=biws,r=cnonceSNONC" + proof,
        "c=biws,r=cnonceSNONCEX" + proof,
        "c=biws,r=otherSNONCE" + proof,
        "c=biws,r=cnonceSNONCE" + proof + ",x=after-proof",
        "c=biws,r=cnonceSNONCE,1=bad" + proof,
        "c=biws,r=cnonceSNONCE" + proof + "\n",
    };
    for (const auto& message : cases) {
        ScramServer server(make_scram_secret("pw", "salt", 1), "SNONCE");
        ASSERT_TRUE(server.handle_client_first("n,,n=,r=cnonce").has_value());
        auto result = server.handle_client_final(message);
        ASSERT_FALSE(result.has_value()) << message;
        EXPECT_EQ(result.error().sqlstate, "08P01") << message << ": " << result.error().message;
        EXPECT_FALSE(server.authenticated());
    }
}

TEST_F(ScramServerFinal, ExtensionBeforeProofIsIgnoredButSigned) {
    // Extensions are part of client-final-without-proof, so adding one after signing breaks the proof.
    const std::string with_ext = valid_final_.substr(0, valid_final_.find(",p=")) + ",x=ext" +
                                 valid_final_.substr(valid_final_.find(",p="));
    auto result = server_.handle_client_final(with_ext);
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().sqlstate, "28P01");
}

TEST(ScramServerMalformed, OutOfOrderCalls) {
    ScramServer server(make_scram_secret("pw", "salt", 1));
    auto early = server.handle_client_final("c=biws,r=abc,p=AAAA");
    ASSERT_FALSE(early.has_value());
    EXPECT_EQ(early.error().sqlstate, "08P01");

    ScramServer server2(make_scram_secret("pw", "salt", 1));
    ASSERT_TRUE(server2.handle_client_first("n,,n=,r=abc").has_value());
    EXPECT_FALSE(server2.handle_client_first("n,,n=,r=abc").has_value());
}

// ---- malformed input: client side ------------------------------------------------------------------

TEST(ScramClientMalformed, ServerFirstErrors) {
    const std::vector<std::string> cases = {
        "",
        "r=",
        "r=cnonce",                            // no server part
        "r=cnonceX",                           // missing s= and i=
        "r=cnonceX,s=c2FsdA==",                // missing i=
        "r=cnonceX,s=c2FsdA==,i=",             // empty iteration count
        "r=cnonceX,s=c2FsdA==,i=0",            // zero iterations
        "r=cnonceX,s=c2FsdA==,i=-1",           // negative
        "r=cnonceX,s=c2FsdA==,i=+5",           // sign
        "r=cnonceX,s=c2FsdA==,i=4096x",        // junk
        "r=cnonceX,s=c2FsdA==,i=99999999999",  // overflow
        "r=cnonceX,s=,i=4096",                 // empty salt
        "r=cnonceX,s=c2FsdA=,i=4096",          // bad base64
        "r=cnonceX,s=c2FsdA==,i=4096,",        // empty extension
        "r=cnonceX,s=c2FsdA==,i=4096,1=x",
        "r=othernonceX,s=c2FsdA==,i=4096",  // does not extend our nonce
        "r=cnoncX,s=c2FsdA==,i=4096",
        "r=cnonce X,s=c2FsdA==,i=4096",  // space in nonce
        "s=c2FsdA==,r=cnonceX,i=4096",   // wrong order
        "m=ext,r=cnonceX,s=c2FsdA==,i=4096",
        "e=other-error",
        std::string("r=cnonceX\0,s=c2FsdA==,i=4096", 28),
    };
    for (const auto& message : cases) {
        ScramClient client("pw", "cnonce");
        client.client_first_message();
        auto result = client.handle_server_first(message);
        ASSERT_FALSE(result.has_value()) << message;
        EXPECT_EQ(result.error().sqlstate, "08P01") << message << ": " << result.error().message;
        EXPECT_FALSE(client.verify_server_final("v=AAAA").has_value());
    }
}

TEST(ScramClientMalformed, ServerFirstWithExtensionIsAccepted) {
    ScramClient client("pw", "cnonce");
    client.client_first_message();
    EXPECT_TRUE(client.handle_server_first("r=cnonceX,s=c2FsdA==,i=1,x=ext").has_value());
}

TEST(ScramClientMalformed, ServerFinalErrors) {
    for (std::string_view message : {"", "v=", "v=!!!!", "v=Zm9v", "x=abc", "v", "V=AAAA"}) {
        ScramClient client("pw", "cnonce");
        client.client_first_message();
        ASSERT_TRUE(client.handle_server_first("r=cnonceX,s=c2FsdA==,i=1").has_value());
        EXPECT_FALSE(client.verify_server_final(message).has_value()) << message;
    }
}

TEST(ScramClientMalformed, OutOfOrderCalls) {
    ScramClient client("pw");
    auto early = client.handle_server_first("r=abc,s=c2FsdA==,i=1");
    ASSERT_FALSE(early.has_value());
    EXPECT_EQ(early.error().sqlstate, "08P01");
    EXPECT_FALSE(ScramClient("pw").verify_server_final("v=AAAA").has_value());
}

// ---- robustness ------------------------------------------------------------------------------------

std::string mutate(std::string message, std::mt19937& rng) {
    std::uniform_int_distribution<int> op(0, 3);
    std::uniform_int_distribution<int> byte(0, 255);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
        const std::size_t pos = message.empty() ? 0 : rng() % message.size();
        switch (op(rng)) {
            case 0:
                if (!message.empty()) message[pos] = static_cast<char>(byte(rng));
                break;
            case 1:
                message.insert(message.begin() + static_cast<std::ptrdiff_t>(pos),
                               static_cast<char>(byte(rng)));
                break;
            case 2:
                if (!message.empty()) message.erase(pos, 1 + rng() % 8);
                break;
            default:
                message.resize(pos);
                break;
        }
    }
    return message;
}

TEST(ScramRobustness, MutatedMessagesNeverCrash) {
    std::mt19937 rng(12345);
    const ScramSecret secret = make_scram_secret("pw", "saltsalt", 1);
    const std::string client_first = "n,,n=,r=cnonce";
    const std::string server_first = "r=cnonceSNONCE,s=c2FsdHNhbHQ=,i=1";
    ScramClient reference("pw", "cnonce");
    reference.client_first_message();
    const std::string client_final = reference.handle_server_first(server_first).value();
    int accepted = 0;
    for (int i = 0; i < 3000; ++i) {
        ScramServer server(secret, "SNONCE");
        if (server.handle_client_first(mutate(client_first, rng))) {
            if (server.handle_client_final(mutate(client_final, rng))) ++accepted;
        }
        ScramServer server2(secret, "SNONCE");
        ASSERT_TRUE(server2.handle_client_first(client_first).has_value());
        if (server2.handle_client_final(mutate(client_final, rng))) ++accepted;

        ScramClient client("pw", "cnonce");
        client.client_first_message();
        if (client.handle_server_first(mutate(server_first, rng))) {
            (void)client.verify_server_final(mutate("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", rng));
        }
    }
    // A mutated client-final can only verify by chance if the mutation left the signed parts intact.
    EXPECT_LT(accepted, 100);
}

}  // namespace
}  // namespace poolguard::protocol::pg
