// Owns SCRAM-SHA-256 (RFC 5802/7677 as PostgreSQL uses it): secrets, base64, and both sides of the exchange.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/error.h"

namespace poolguard::protocol::pg {

inline constexpr std::string_view kScramSha256Mechanism = "SCRAM-SHA-256";
inline constexpr int kScramDefaultIterations = 4096;

using ScramKey = std::array<uint8_t, 32>;

// A stored SCRAM-SHA-256 secret (what pg_authid.rolpassword holds).
struct ScramSecret {
    int iterations = 0;
    std::string salt;  // raw bytes
    ScramKey stored_key{};
    ScramKey server_key{};

    friend bool operator==(const ScramSecret&, const ScramSecret&) = default;
};

// Standard base64 (RFC 4648, with padding). Decoding is strict: no whitespace, length a multiple of 4,
// padding only at the end. Returns raw bytes.
std::string base64_encode(std::span<const uint8_t> data);
std::string base64_encode(std::string_view data);
Result<std::string> base64_decode(std::string_view text);

// Parses "SCRAM-SHA-256$<iter>:<salt b64>$<StoredKey b64>:<ServerKey b64>".
Result<ScramSecret> parse_scram_secret(std::string_view text);
// The inverse of parse_scram_secret.
std::string format_scram_secret(const ScramSecret& secret);

// Derives a secret from a password. The password is used as-is: SASLprep is the identity for ASCII
// passwords; non-ASCII passwords are not normalized (PostgreSQL does NFKC here, so a non-ASCII password
// that NFKC changes will not match a secret PostgreSQL computed). `iterations` < 1 is treated as 1.
ScramSecret make_scram_secret(std::string_view password, std::string_view salt, int iterations);

// A secret for serving SCRAM to a client when only a plain password is stored: random 16-byte salt,
// 4096 iterations (what PgBouncer does). Aborts if the CSPRNG fails (no error channel; never expected).
// `iterations`: scram_iterations (PgBouncer 1.25's setting; 4096 by default).
ScramSecret scram_secret_for_plain_password(std::string_view password,
                                            int iterations = kScramDefaultIterations);

// A secret for a user that does not exist, so the exchange runs to the end and fails like a wrong password
// instead of revealing that the user is unknown. The salt is derived from `user` and `mock_nonce` (a
// per-process random string) so repeated attempts for one name see the same salt; no proof verifies.
ScramSecret scram_mock_secret(std::string_view user, std::string_view mock_nonce);

// The SCRAM primitives, exposed for pass-through and tests.
ScramKey scram_salted_password(std::string_view password, std::string_view salt, int iterations);
ScramKey hmac_sha256(std::span<const uint8_t> key, std::string_view data);
ScramKey sha256(std::span<const uint8_t> data);

// poolguard logging in to a PostgreSQL server with SCRAM-SHA-256 (no channel binding: gs2 header "n,,").
// Errors: malformed or out-of-order server messages 08P01; server "e=invalid-proof" 28P01, other "e=" 28000;
// a wrong server signature 28000; CSPRNG failure XX000. After an error every later call fails too.
class ScramClient {
  public:
    // `nonce` and `user_name` are test hooks: an empty nonce means 24 random bytes in base64; a non-empty
    // one must be printable ASCII without ','. PostgreSQL ignores the user name in the message, so it is
    // left empty ("n=,") unless given.
    explicit ScramClient(std::string password, std::string nonce = {}, std::string user_name = {});
    // Pass-through: log in with keys recovered from a client's exchange, no password known. The salt and
    // iteration count the server sends are then not used: the keys must come from the server's secret.
    static ScramClient from_keys(const ScramKey& client_key, const ScramKey& server_key,
                                 std::string nonce = {});

    // "n,,n=,r=<nonce>". Call first; calling it again returns the same message.
    std::string client_first_message();
    // Validates server-first (nonce extends ours, salt is base64, iterations > 0) and returns
    // client-final-message "c=biws,r=<nonce>,p=<proof>".
    Result<std::string> handle_server_first(std::string_view server_first);
    // Checks the server's "v=<signature>"; an "e=<error>" message becomes an Error.
    Status verify_server_final(std::string_view server_final);

  private:
    enum class State { kInitial, kFirstSent, kFinalSent, kDone, kFailed };

    ScramClient() = default;
    std::unexpected<Error> fail_with(std::string message, const char* sqlstate);

    State state_ = State::kInitial;
    std::string password_;
    std::optional<ScramKey> client_key_;  // set for pass-through
    std::optional<ScramKey> server_key_;
    std::string nonce_;
    std::string user_name_;
    std::string client_first_bare_;
    ScramKey expected_server_signature_{};
    bool random_failed_ = false;
};

// poolguard authenticating a client with SCRAM-SHA-256 against a stored secret.
// Errors: malformed or out-of-order messages, a channel-binding or nonce mismatch 08P01; an authzid or a
// mandatory extension "m=" 0A000; a wrong proof 28P01. After an error every later call fails too.
// Accepts "y,," because poolguard never offers SCRAM-SHA-256-PLUS; if it ever does, "y,," must be refused.
class ScramServer {
  public:
    // `nonce` is a test hook: empty means 18 random bytes in base64; a non-empty one must be printable
    // ASCII without ','.
    explicit ScramServer(ScramSecret secret, std::string nonce = {});

    // Parses client-first-message (gs2 header "n,," or "y,,"; channel binding "p=" and authzid are
    // rejected) and returns server-first-message "r=<client nonce><server nonce>,s=<salt b64>,i=<iter>".
    Result<std::string> handle_client_first(std::string_view client_first);
    // SCRAM-SHA-256-PLUS (tls-server-end-point, RFC 5929): `offered` when the server listed the -PLUS
    // mechanism (a client that then answers "y" is refused: a downgrade), `selected` when the client chose
    // it, `data` the hash of the server's certificate. Call before handle_client_first.
    void set_channel_binding(bool offered, bool selected, std::string data);
    // Verifies the client's proof. On success returns server-final-message "v=<server signature b64>";
    // a wrong proof is Error{"password authentication failed", "28P01"}.
    Result<std::string> handle_client_final(std::string_view client_final);

    bool authenticated() const { return state_ == State::kDone; }
    // The ClientKey recovered from the client's proof, after success (for SCRAM pass-through).
    std::optional<ScramKey> client_key() const;

  private:
    enum class State { kInitial, kFirstDone, kDone, kFailed };

    std::unexpected<Error> fail_with(std::string message, const char* sqlstate);

    State state_ = State::kInitial;
    ScramSecret secret_;
    std::string server_nonce_;
    std::string gs2_header_;
    std::string client_first_bare_;
    std::string server_first_;
    std::string full_nonce_;
    std::optional<ScramKey> client_key_;
    bool cb_offered_ = false;
    bool cb_selected_ = false;
    std::string cb_data_;
};

}  // namespace poolguard::protocol::pg
