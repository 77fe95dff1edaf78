// Owns PostgreSQL MD5 password authentication math (pg_shadow "md5..." secrets and salted responses).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace poolguard::protocol::pg {

// MD5 digest of `data` as 32 lowercase hex characters.
std::string md5_hex(std::string_view data);

// The pg_shadow form of an MD5 password: "md5" + md5_hex(password + user).
std::string md5_password_secret(std::string_view user, std::string_view password);

// True when `secret` has PostgreSQL's stored MD5 form: "md5" followed by exactly 32 lowercase hex digits.
bool is_md5_secret(std::string_view secret);

// The PasswordMessage answer to AuthenticationMD5Password with `salt`:
// "md5" + md5_hex(md5_hex(password + user) + salt). `secret` is either a plain password or an "md5..."
// secret (see is_md5_secret), in which case the hash inside it is used and the password need not be known.
std::string md5_salted_response(std::string_view secret, std::string_view user,
                                std::span<const uint8_t, 4> salt);

// Whether a client's PasswordMessage answer matches the stored `secret` (plain or "md5...") for the `salt`
// we sent. `user` is only used for a plain secret (an "md5..." secret has the user hashed in). Compares in
// constant time. A SCRAM secret ("SCRAM-SHA-256$...") never verifies an MD5 answer: returns false.
bool md5_verify(std::string_view client_answer, std::string_view secret, std::string_view user,
                std::span<const uint8_t, 4> salt);

}  // namespace poolguard::protocol::pg
