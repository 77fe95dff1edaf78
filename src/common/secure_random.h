// Owns secure_random(): bytes from OpenSSL's CSPRNG for logins (cancel keys, salts, nonces), drawn in
// batches so that a login does not pay for a generator call each time.
#pragma once

#include <cstdint>
#include <span>

namespace poolguard {

// Fills `out` from OpenSSL's RAND_bytes, drawn 4 KB at a time per thread. Under load a RAND_bytes call
// cost 7 % of poolguard's CPU in a connection-per-transaction benchmark (OpenSSL 3's DRBG sets its cipher
// up again on every call); a login needs 8-30 bytes. Used bytes are wiped from the batch, and a forked
// child never hands out its parent's batch. False only when the generator fails (`out` is then wiped).
bool secure_random(std::span<uint8_t> out);

}  // namespace poolguard
