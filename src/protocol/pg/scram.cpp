// Owns SCRAM-SHA-256 (RFC 5802/7677 as PostgreSQL uses it): secrets, base64, and both sides of the exchange.
#include "protocol/pg/scram.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <charconv>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

#include "common/secure_random.h"

namespace poolguard::protocol::pg {

namespace {

constexpr std::string_view kSecretPrefix = "SCRAM-SHA-256$";
constexpr std::string_view kGs2NoBinding = "n,,";
constexpr std::size_t kClientNonceBytes = 24;
constexpr std::size_t kServerNonceBytes = 18;
constexpr std::size_t kPlainSaltBytes = 16;
constexpr std::size_t kKeyLen = 32;

[[noreturn]] void crypto_failure(const char* what) {
    // Only reachable when the crypto library itself is broken (e.g. an algorithm disabled by policy).
    std::fprintf(stderr, "poolguard: fatal: OpenSSL %s failed\n", what);
    std::abort();
}

std::optional<std::string> random_nonce(std::size_t raw_bytes) {
    std::vector<uint8_t> raw(raw_bytes);
    if (!secure_random(raw)) return std::nullopt;
    return base64_encode(raw);
}

std::span<const uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string_view chars_of(std::span<const uint8_t> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bool equal_ct(std::span<const uint8_t> a, std::span<const uint8_t> b) {
    return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

ScramKey xor_keys(const ScramKey& a, const ScramKey& b) {
    ScramKey out{};
    for (std::size_t i = 0; i < out.size(); ++i)
        out[i] = a[i] ^ b[i];
    return out;
}

// The message signed by both proofs (RFC 5802 section 3).
std::string auth_message(std::string_view client_first_bare, std::string_view server_first,
                         std::string_view client_final_without_proof) {
    std::string out;
    out.reserve(client_first_bare.size() + server_first.size() + client_final_without_proof.size() + 2);
    out.append(client_first_bare).append(",").append(server_first).append(",");
    out.append(client_final_without_proof);
    return out;
}

std::vector<std::string_view> split_commas(std::string_view s) {
    std::vector<std::string_view> parts;
    while (true) {
        const auto comma = s.find(',');
        parts.push_back(s.substr(0, comma));
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    return parts;
}

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// True when `part` is an attribute "x=value" (any ALPHA name), as extensions are.
bool is_attribute(std::string_view part) {
    return part.size() >= 2 && is_alpha(part[0]) && part[1] == '=';
}

std::optional<std::string_view> attribute(std::string_view part, char name) {
    if (part.size() < 2 || part[0] != name || part[1] != '=') return std::nullopt;
    return part.substr(2);
}

// printable = %x21-2B / %x2D-7E (RFC 5802): visible ASCII except ','.
bool is_valid_nonce(std::string_view nonce) {
    if (nonce.empty()) return false;
    for (char c : nonce) {
        if (c < 0x21 || c > 0x7e || c == ',') return false;
    }
    return true;
}

std::optional<int> parse_positive_int(std::string_view text) {
    if (text.empty() || text.front() < '0' || text.front() > '9') return std::nullopt;
    int value = 0;
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || ptr != text.data() + text.size() || value < 1) return std::nullopt;
    return value;
}

std::optional<ScramKey> decode_key(std::string_view b64) {
    auto raw = base64_decode(b64);
    if (!raw || raw->size() != kKeyLen) return std::nullopt;
    ScramKey key{};
    for (std::size_t i = 0; i < kKeyLen; ++i)
        key[i] = static_cast<uint8_t>((*raw)[i]);
    return key;
}

// saslname escaping (RFC 5802 section 5.1): ',' -> "=2C", '=' -> "=3D".
std::string escape_saslname(std::string_view name) {
    std::string out;
    for (char c : name) {
        if (c == ',') {
            out += "=2C";
        } else if (c == '=') {
            out += "=3D";
        } else {
            out += c;
        }
    }
    return out;
}

constexpr char kB64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

}  // namespace

// ---- base64 ----------------------------------------------------------------------------------------

std::string base64_encode(std::span<const uint8_t> data) {
    std::string out;
    out.reserve((data.size() + 2) / 3 * 4);
    std::size_t i = 0;
    for (; i + 3 <= data.size(); i += 3) {
        const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8) | data[i + 2];
        out += kB64Alphabet[(v >> 18) & 63];
        out += kB64Alphabet[(v >> 12) & 63];
        out += kB64Alphabet[(v >> 6) & 63];
        out += kB64Alphabet[v & 63];
    }
    const std::size_t rest = data.size() - i;
    if (rest == 1) {
        const uint32_t v = uint32_t{data[i]} << 16;
        out += kB64Alphabet[(v >> 18) & 63];
        out += kB64Alphabet[(v >> 12) & 63];
        out += "==";
    } else if (rest == 2) {
        const uint32_t v = (uint32_t{data[i]} << 16) | (uint32_t{data[i + 1]} << 8);
        out += kB64Alphabet[(v >> 18) & 63];
        out += kB64Alphabet[(v >> 12) & 63];
        out += kB64Alphabet[(v >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string base64_encode(std::string_view data) {
    return base64_encode(bytes_of(data));
}

Result<std::string> base64_decode(std::string_view text) {
    if (text.size() % 4 != 0) return fail("invalid base64: length is not a multiple of 4");
    std::size_t padding = 0;
    if (!text.empty() && text.back() == '=') ++padding;
    if (padding == 1 && text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
    std::string out;
    out.reserve(text.size() / 4 * 3);
    for (std::size_t i = 0; i < text.size(); i += 4) {
        const bool last = i + 4 == text.size();
        uint32_t v = 0;
        for (std::size_t j = 0; j < 4; ++j) {
            const char c = text[i + j];
            int d = 0;
            if (c == '=' && last && j >= 4 - padding) {
                d = 0;
            } else {
                d = b64_value(c);
                if (d < 0) return fail("invalid base64: unexpected character");
            }
            v = (v << 6) | static_cast<uint32_t>(d);
        }
        out += static_cast<char>((v >> 16) & 0xff);
        if (!last || padding < 2) out += static_cast<char>((v >> 8) & 0xff);
        if (!last || padding < 1) out += static_cast<char>(v & 0xff);
    }
    return out;
}

// ---- primitives ------------------------------------------------------------------------------------

ScramKey hmac_sha256(std::span<const uint8_t> key, std::string_view data) {
    static const uint8_t kEmpty = 0;
    ScramKey out{};
    unsigned int len = 0;
    const uint8_t* key_ptr = key.empty() ? &kEmpty : key.data();
    const auto* data_ptr = data.empty() ? &kEmpty : reinterpret_cast<const uint8_t*>(data.data());
    if (key.size() > INT_MAX ||
        HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), data_ptr, data.size(), out.data(), &len) ==
            nullptr ||
        len != kKeyLen) {
        crypto_failure("HMAC-SHA-256");
    }
    return out;
}

ScramKey sha256(std::span<const uint8_t> data) {
    static const uint8_t kEmpty = 0;
    ScramKey out{};
    unsigned int len = 0;
    const uint8_t* ptr = data.empty() ? &kEmpty : data.data();
    if (EVP_Digest(ptr, data.size(), out.data(), &len, EVP_sha256(), nullptr) != 1 || len != kKeyLen) {
        crypto_failure("SHA-256");
    }
    return out;
}

ScramKey scram_salted_password(std::string_view password, std::string_view salt, int iterations) {
    static const char kEmpty = 0;
    ScramKey out{};
    if (password.size() > INT_MAX || salt.size() > INT_MAX ||
        PKCS5_PBKDF2_HMAC(password.empty() ? &kEmpty : password.data(), static_cast<int>(password.size()),
                          reinterpret_cast<const unsigned char*>(salt.empty() ? &kEmpty : salt.data()),
                          static_cast<int>(salt.size()), iterations < 1 ? 1 : iterations, EVP_sha256(),
                          static_cast<int>(out.size()), out.data()) != 1) {
        crypto_failure("PBKDF2-HMAC-SHA-256");
    }
    return out;
}

// ---- secrets ---------------------------------------------------------------------------------------

Result<ScramSecret> parse_scram_secret(std::string_view text) {
    auto invalid = [](std::string_view why) {
        return fail("invalid SCRAM-SHA-256 secret: " + std::string(why));
    };
    if (!text.starts_with(kSecretPrefix)) return invalid("does not start with \"SCRAM-SHA-256$\"");
    text.remove_prefix(kSecretPrefix.size());

    const auto dollar = text.find('$');
    if (dollar == std::string_view::npos) return invalid("missing '$' before the keys");
    const std::string_view params = text.substr(0, dollar);
    const std::string_view keys = text.substr(dollar + 1);

    const auto colon1 = params.find(':');
    if (colon1 == std::string_view::npos) return invalid("missing ':' between iterations and salt");
    const auto iterations = parse_positive_int(params.substr(0, colon1));
    if (!iterations) return invalid("iteration count is not a positive integer");
    auto salt = base64_decode(params.substr(colon1 + 1));
    if (!salt || salt->empty()) return invalid("salt is not valid base64");

    const auto colon2 = keys.find(':');
    if (colon2 == std::string_view::npos) return invalid("missing ':' between StoredKey and ServerKey");
    const auto stored_key = decode_key(keys.substr(0, colon2));
    if (!stored_key) return invalid("StoredKey is not 32 bytes of base64");
    const auto server_key = decode_key(keys.substr(colon2 + 1));
    if (!server_key) return invalid("ServerKey is not 32 bytes of base64");

    return ScramSecret{*iterations, std::move(*salt), *stored_key, *server_key};
}

std::string format_scram_secret(const ScramSecret& secret) {
    std::string out(kSecretPrefix);
    out += std::to_string(secret.iterations);
    out += ':';
    out += base64_encode(secret.salt);
    out += '$';
    out += base64_encode(secret.stored_key);
    out += ':';
    out += base64_encode(secret.server_key);
    return out;
}

ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations) {
    if (iterations < 1) iterations = 1;
    const ScramKey salted = scram_salted_password(password, salt, iterations);
    const ScramKey client_key = hmac_sha256(salted, "Client Key");
    return ScramSecret{iterations, std::string(salt), sha256(client_key), hmac_sha256(salted, "Server Key")};
}

ScramSecret scram_secret_for_plain_password(std::string_view password, int iterations) {
    std::array<uint8_t, kPlainSaltBytes> salt{};
    if (!secure_random(salt)) crypto_failure("RAND_bytes");
    return make_scram_secret(password, chars_of(salt), iterations > 0 ? iterations : kScramDefaultIterations);
}

ScramSecret scram_mock_secret(std::string_view user, std::string_view mock_nonce) {
    std::string input(user);
    input.append(mock_nonce);
    const ScramKey digest = sha256(bytes_of(input));
    ScramSecret secret;
    secret.iterations = kScramDefaultIterations;
    secret.salt.assign(reinterpret_cast<const char*>(digest.data()), kPlainSaltBytes);
    // All-zero keys: no ClientKey hashes to an all-zero StoredKey, so every proof fails.
    return secret;
}

// ---- client ----------------------------------------------------------------------------------------

ScramClient::ScramClient(std::string password, std::string nonce, std::string user_name)
    : password_(std::move(password)), nonce_(std::move(nonce)), user_name_(std::move(user_name)) {}

ScramClient ScramClient::from_keys(const ScramKey& client_key, const ScramKey& server_key,
                                   std::string nonce) {
    ScramClient client;
    client.client_key_ = client_key;
    client.server_key_ = server_key;
    client.nonce_ = std::move(nonce);
    return client;
}

std::unexpected<Error> ScramClient::fail_with(std::string message, const char* sqlstate) {
    state_ = State::kFailed;
    return fail(std::move(message), sqlstate);
}

std::string ScramClient::client_first_message() {
    if (state_ == State::kInitial) {
        if (nonce_.empty()) {
            auto nonce = random_nonce(kClientNonceBytes);
            if (nonce) {
                nonce_ = std::move(*nonce);
            } else {
                random_failed_ = true;  // reported by handle_server_first
            }
        }
        client_first_bare_ = "n=" + escape_saslname(user_name_) + ",r=" + nonce_;
        state_ = State::kFirstSent;
    }
    return std::string(kGs2NoBinding) + client_first_bare_;
}

Result<std::string> ScramClient::handle_server_first(std::string_view server_first) {
    if (state_ != State::kFirstSent) {
        return fail_with("SCRAM: server-first-message received out of order", sqlstate::kProtocolViolation);
    }
    if (random_failed_) {
        return fail_with("SCRAM: could not generate a random nonce", sqlstate::kInternalError);
    }
    auto malformed = [this](std::string_view why) {
        return fail_with("malformed SCRAM server-first-message: " + std::string(why),
                         sqlstate::kProtocolViolation);
    };
    const auto parts = split_commas(server_first);
    if (attribute(parts[0], 'm')) return malformed("server requires an unsupported extension");
    if (parts.size() < 3) return malformed("expected r=, s= and i= attributes");
    const auto nonce = attribute(parts[0], 'r');
    if (!nonce) return malformed("expected nonce attribute r=");
    if (!is_valid_nonce(*nonce)) return malformed("nonce contains invalid characters");
    if (nonce->size() <= nonce_.size() || !nonce->starts_with(nonce_)) {
        return malformed("server nonce does not extend the client nonce");
    }
    const auto salt_b64 = attribute(parts[1], 's');
    if (!salt_b64) return malformed("expected salt attribute s=");
    auto salt = base64_decode(*salt_b64);
    if (!salt || salt->empty()) return malformed("salt is not valid base64");
    const auto iter_text = attribute(parts[2], 'i');
    if (!iter_text) return malformed("expected iteration count attribute i=");
    const auto iterations = parse_positive_int(*iter_text);
    if (!iterations) return malformed("iteration count is not a positive integer");
    for (std::size_t i = 3; i < parts.size(); ++i) {
        if (!is_attribute(parts[i])) return malformed("invalid extension attribute");
    }

    if (!client_key_) {
        const ScramKey salted = scram_salted_password(password_, *salt, *iterations);
        client_key_ = hmac_sha256(salted, "Client Key");
        server_key_ = hmac_sha256(salted, "Server Key");
    }
    const std::string without_proof = "c=" + base64_encode(kGs2NoBinding) + ",r=" + std::string(*nonce);
    const std::string message = auth_message(client_first_bare_, server_first, without_proof);
    const ScramKey client_signature = hmac_sha256(sha256(*client_key_), message);
    const ScramKey proof = xor_keys(*client_key_, client_signature);
    expected_server_signature_ = hmac_sha256(*server_key_, message);
    state_ = State::kFinalSent;
    return without_proof + ",p=" + base64_encode(proof);
}

Status ScramClient::verify_server_final(std::string_view server_final) {
    if (state_ != State::kFinalSent) {
        return fail_with("SCRAM: server-final-message received out of order", sqlstate::kProtocolViolation);
    }
    const auto parts = split_commas(server_final);
    if (const auto error = attribute(parts[0], 'e')) {
        return fail_with(
            "SCRAM authentication failed: server reported \"" + std::string(*error) + "\"",
            *error == "invalid-proof" ? sqlstate::kInvalidPassword : sqlstate::kInvalidAuthorization);
    }
    const auto verifier = attribute(parts[0], 'v');
    if (!verifier) {
        return fail_with("malformed SCRAM server-final-message: expected v= or e=",
                         sqlstate::kProtocolViolation);
    }
    for (std::size_t i = 1; i < parts.size(); ++i) {
        if (!is_attribute(parts[i])) {
            return fail_with("malformed SCRAM server-final-message: invalid extension attribute",
                             sqlstate::kProtocolViolation);
        }
    }
    const auto signature = base64_decode(*verifier);
    if (!signature) {
        return fail_with("malformed SCRAM server-final-message: signature is not valid base64",
                         sqlstate::kProtocolViolation);
    }
    if (!equal_ct(bytes_of(*signature), expected_server_signature_)) {
        return fail_with("SCRAM authentication failed: invalid server signature",
                         sqlstate::kInvalidAuthorization);
    }
    state_ = State::kDone;
    return {};
}

// ---- server ----------------------------------------------------------------------------------------

ScramServer::ScramServer(ScramSecret secret, std::string nonce)
    : secret_(std::move(secret)), server_nonce_(std::move(nonce)) {}

std::unexpected<Error> ScramServer::fail_with(std::string message, const char* sqlstate) {
    state_ = State::kFailed;
    return fail(std::move(message), sqlstate);
}

Result<std::string> ScramServer::handle_client_first(std::string_view client_first) {
    if (state_ != State::kInitial) {
        return fail_with("SCRAM: client-first-message received out of order", sqlstate::kProtocolViolation);
    }
    auto malformed = [this](std::string_view why) {
        return fail_with("malformed SCRAM message: " + std::string(why), sqlstate::kProtocolViolation);
    };

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","
    const auto comma1 = client_first.find(',');
    if (comma1 == std::string_view::npos) return malformed("missing GS2 header");
    const std::string_view cbind_flag = client_first.substr(0, comma1);
    if (cb_selected_) {
        if (cbind_flag != "p=tls-server-end-point")
            return fail_with(cbind_flag.starts_with("p=") ? "unsupported SCRAM channel-binding type"
                                                          : "malformed SCRAM message: the client selected "
                                                            "SCRAM-SHA-256-PLUS without channel binding data",
                             sqlstate::kProtocolViolation);
    } else if (cbind_flag.starts_with("p=")) {
        return malformed("the client selected SCRAM-SHA-256 but sent channel binding data");
    } else if (cbind_flag != "n" && cbind_flag != "y") {
        return malformed("invalid channel binding flag");
    } else if (cbind_flag == "y" && cb_offered_) {
        // The client supports channel binding and believes the server does not: someone removed -PLUS.
        return fail_with("SCRAM channel binding negotiation error", sqlstate::kProtocolViolation);
    }
    const auto comma2 = client_first.find(',', comma1 + 1);
    if (comma2 == std::string_view::npos) return malformed("missing GS2 header");
    const std::string_view authzid = client_first.substr(comma1 + 1, comma2 - comma1 - 1);
    if (!authzid.empty()) {
        if (!attribute(authzid, 'a')) return malformed("invalid authorization identity");
        return fail_with("client uses authorization identity, but it is not supported",
                         sqlstate::kFeatureNotSupported);
    }
    const std::string_view bare = client_first.substr(comma2 + 1);

    const auto parts = split_commas(bare);
    if (attribute(parts[0], 'm')) {
        return fail_with("client requires an unsupported SCRAM extension", sqlstate::kFeatureNotSupported);
    }
    if (!attribute(parts[0], 'n')) return malformed("expected user name attribute n=");
    if (parts.size() < 2) return malformed("expected nonce attribute r=");
    const auto client_nonce = attribute(parts[1], 'r');
    if (!client_nonce) return malformed("expected nonce attribute r=");
    if (!is_valid_nonce(*client_nonce)) return malformed("nonce is empty or contains invalid characters");
    for (std::size_t i = 2; i < parts.size(); ++i) {
        if (!is_attribute(parts[i])) return malformed("invalid extension attribute");
    }

    if (server_nonce_.empty()) {
        auto nonce = random_nonce(kServerNonceBytes);
        if (!nonce) return fail_with("SCRAM: could not generate a random nonce", sqlstate::kInternalError);
        server_nonce_ = std::move(*nonce);
    }
    gs2_header_ = std::string(client_first.substr(0, comma2 + 1));
    client_first_bare_ = std::string(bare);
    full_nonce_ = std::string(*client_nonce) + server_nonce_;
    server_first_ =
        "r=" + full_nonce_ + ",s=" + base64_encode(secret_.salt) + ",i=" + std::to_string(secret_.iterations);
    state_ = State::kFirstDone;
    return server_first_;
}

Result<std::string> ScramServer::handle_client_final(std::string_view client_final) {
    if (state_ != State::kFirstDone) {
        return fail_with("SCRAM: client-final-message received out of order", sqlstate::kProtocolViolation);
    }
    auto malformed = [this](std::string_view why) {
        return fail_with("malformed SCRAM message: " + std::string(why), sqlstate::kProtocolViolation);
    };

    const auto parts = split_commas(client_final);
    if (parts.size() < 3) return malformed("expected c=, r= and p= attributes");
    const auto binding = attribute(parts[0], 'c');
    if (!binding) return malformed("expected channel binding attribute c=");
    const auto binding_raw = base64_decode(*binding);
    if (!binding_raw) return malformed("channel binding data is not valid base64");
    if (*binding_raw != gs2_header_ + (cb_selected_ ? cb_data_ : std::string())) {
        return fail_with("SCRAM channel binding check failed", sqlstate::kProtocolViolation);
    }
    const auto nonce = attribute(parts[1], 'r');
    if (!nonce) return malformed("expected nonce attribute r=");
    if (!equal_ct(bytes_of(*nonce), bytes_of(full_nonce_))) {
        return fail_with("invalid SCRAM response: nonce does not match", sqlstate::kProtocolViolation);
    }
    for (std::size_t i = 2; i + 1 < parts.size(); ++i) {
        if (!is_attribute(parts[i])) return malformed("invalid extension attribute");
    }
    const auto proof_b64 = attribute(parts.back(), 'p');
    if (!proof_b64) return malformed("expected proof attribute p= last");
    const auto proof = decode_key(*proof_b64);
    if (!proof) return malformed("proof is not 32 bytes of base64");

    const std::string_view without_proof = client_final.substr(0, client_final.rfind(','));
    const std::string message = auth_message(client_first_bare_, server_first_, without_proof);
    const ScramKey client_signature = hmac_sha256(secret_.stored_key, message);
    const ScramKey client_key = xor_keys(*proof, client_signature);
    if (!equal_ct(sha256(client_key), secret_.stored_key)) {
        return fail_with("password authentication failed", sqlstate::kInvalidPassword);
    }
    client_key_ = client_key;
    state_ = State::kDone;
    return "v=" + base64_encode(hmac_sha256(secret_.server_key, message));
}

void ScramServer::set_channel_binding(bool offered, bool selected, std::string data) {
    cb_offered_ = offered;
    cb_selected_ = selected;
    cb_data_ = std::move(data);
}

std::optional<ScramKey> ScramServer::client_key() const {
    return client_key_;
}

}  // namespace poolguard::protocol::pg
