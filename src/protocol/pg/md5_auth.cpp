// Owns PostgreSQL MD5 password authentication math (pg_shadow "md5..." secrets and salted responses).
#include "protocol/pg/md5_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <array>
#include <cstdlib>

namespace poolguard::protocol::pg {

namespace {

constexpr std::string_view kMd5Prefix = "md5";
constexpr std::size_t kMd5HexLen = 32;
constexpr std::string_view kScramPrefix = "SCRAM-SHA-256$";

// MD5 fetched from the provider once. EVP_md5() makes every EVP_Digest search the providers again (OpenSSL
// 3's implicit fetch, under a lock): 1.0 µs a digest against 0.4 µs, and an md5 login takes two or three.
const EVP_MD* md5_method() {
    static const EVP_MD* const method = [] {
        const EVP_MD* fetched = EVP_MD_fetch(nullptr, "MD5", nullptr);
        return fetched != nullptr ? fetched : EVP_md5();
    }();
    return method;
}

}  // namespace

std::string md5_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest.data(), &len, md5_method(), nullptr) != 1 || len != 16) {
        // Only possible when the crypto library has MD5 disabled (e.g. FIPS mode): nothing sensible remains.
        std::abort();
    }
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out(kMd5HexLen, '\0');
    for (unsigned int i = 0; i < len; ++i) {
        out[2 * i] = kHex[digest[i] >> 4];
        out[2 * i + 1] = kHex[digest[i] & 0x0f];
    }
    return out;
}

std::string md5_password_secret(std::string_view user, std::string_view password) {
    std::string input;
    input.reserve(password.size() + user.size());
    input.append(password).append(user);
    return std::string(kMd5Prefix) + md5_hex(input);
}

bool is_md5_secret(std::string_view secret) {
    if (secret.size() != kMd5Prefix.size() + kMd5HexLen || !secret.starts_with(kMd5Prefix)) return false;
    for (char c : secret.substr(kMd5Prefix.size())) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    }
    return true;
}

std::string md5_salted_response(std::string_view secret, std::string_view user,
                                std::span<const uint8_t, 4> salt) {
    std::string input;
    input.reserve(kMd5HexLen + salt.size());
    if (is_md5_secret(secret)) {
        input.append(secret.substr(kMd5Prefix.size()));
    } else {
        input.append(md5_password_secret(user, secret).substr(kMd5Prefix.size()));
    }
    input.append(reinterpret_cast<const char*>(salt.data()), salt.size());
    return std::string(kMd5Prefix) + md5_hex(input);
}

bool md5_verify(std::string_view client_answer, std::string_view secret, std::string_view user,
                std::span<const uint8_t, 4> salt) {
    if (secret.starts_with(kScramPrefix)) return false;
    const std::string expected = md5_salted_response(secret, user, salt);
    if (client_answer.size() != expected.size()) return false;
    return CRYPTO_memcmp(client_answer.data(), expected.data(), expected.size()) == 0;
}

}  // namespace poolguard::protocol::pg
