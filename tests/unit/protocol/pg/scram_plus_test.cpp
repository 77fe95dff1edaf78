// Tests SCRAM-SHA-256-PLUS on the server side (tls-server-end-point channel binding): a correct exchange
// with the binding data, wrong binding data, and the downgrade and mismatch refusals of RFC 5802.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <string>

#include "protocol/pg/scram.h"

namespace poolguard::protocol::pg {
namespace {

const std::string kSalt = "0123456789abcdef";
constexpr int kIter = 4096;
const std::string kHeader = "p=tls-server-end-point,,";
const std::string kBare = "n=,r=clientnonce";

std::string b64(const std::string& raw) {
    std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
    const int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(raw.data()), static_cast<int>(raw.size()));
    out.resize(static_cast<size_t>(n));
    return out;
}
std::string hmac(const std::string& key, const std::string& msg) {
    unsigned char out[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
    return std::string(reinterpret_cast<char*>(out), len);
}
std::string sha(const std::string& s) {
    unsigned char out[32];
    unsigned int len = 0;
    EVP_Digest(s.data(), s.size(), out, &len, EVP_sha256(), nullptr);
    return std::string(reinterpret_cast<char*>(out), len);
}

// The client's final message for `binding` (what goes into c= after the GS2 header).
std::string client_final(const std::string& server_first, const std::string& header,
                         const std::string& binding) {
    unsigned char salted[32];
    PKCS5_PBKDF2_HMAC("secret", 6, reinterpret_cast<const unsigned char*>(kSalt.data()),
                      static_cast<int>(kSalt.size()), kIter, EVP_sha256(), 32, salted);
    const std::string client_key = hmac(std::string(reinterpret_cast<char*>(salted), 32), "Client Key");
    const std::string nonce = server_first.substr(2, server_first.find(',') - 2);
    const std::string without_proof = "c=" + b64(header + binding) + ",r=" + nonce;
    const std::string auth = kBare + "," + server_first + "," + without_proof;
    const std::string sig = hmac(sha(client_key), auth);
    std::string proof = client_key;
    for (size_t i = 0; i < proof.size(); ++i)
        proof[i] = static_cast<char>(proof[i] ^ sig[i]);
    return without_proof + ",p=" + b64(proof);
}

TEST(ScramPlus, ExchangeWithTheServerCertificateHash) {
    const std::string cb = sha("certificate");
    ScramServer server(make_scram_secret("secret", kSalt, kIter));
    server.set_channel_binding(true, true, cb);
    auto first = server.handle_client_first(kHeader + kBare);
    ASSERT_TRUE(first) << first.error().message;
    auto fin = server.handle_client_final(client_final(*first, kHeader, cb));
    ASSERT_TRUE(fin) << fin.error().message;
    EXPECT_TRUE(server.authenticated());
}

TEST(ScramPlus, WrongBindingDataFails) {
    ScramServer server(make_scram_secret("secret", kSalt, kIter));
    server.set_channel_binding(true, true, sha("our certificate"));
    auto first = server.handle_client_first(kHeader + kBare);
    ASSERT_TRUE(first);
    // A man in the middle terminates TLS with its own certificate: the client binds to that one.
    auto fin = server.handle_client_final(client_final(*first, kHeader, sha("the attacker's certificate")));
    ASSERT_FALSE(fin);
    EXPECT_EQ(fin.error().message, "SCRAM channel binding check failed");
}

TEST(ScramPlus, NegotiationRefusals) {
    {  // -PLUS selected, but no channel binding in the GS2 header
        ScramServer server(make_scram_secret("secret", kSalt, kIter));
        server.set_channel_binding(true, true, sha("c"));
        EXPECT_FALSE(server.handle_client_first("n,," + kBare));
    }
    {  // another binding type
        ScramServer server(make_scram_secret("secret", kSalt, kIter));
        server.set_channel_binding(true, true, sha("c"));
        EXPECT_FALSE(server.handle_client_first("p=tls-unique,," + kBare));
    }
    {  // "y": the client could bind but thinks the server cannot, while -PLUS was offered: a downgrade
        ScramServer server(make_scram_secret("secret", kSalt, kIter));
        server.set_channel_binding(true, false, "");
        auto r = server.handle_client_first("y,," + kBare);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().message, "SCRAM channel binding negotiation error");
    }
    {  // "y" without TLS (nothing offered) is fine
        ScramServer server(make_scram_secret("secret", kSalt, kIter));
        server.set_channel_binding(false, false, "");
        EXPECT_TRUE(server.handle_client_first("y,," + kBare));
    }
}

}  // namespace
}  // namespace poolguard::protocol::pg
