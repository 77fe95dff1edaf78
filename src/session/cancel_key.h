// Owns the layout of the cancel keys poolguard gives its clients (BackendKeyData): the peer id and the
// forwarding TTL that [peers] routing reads, laid out as PgBouncer 1.21+ does so the two can be peered.
#pragma once

#include <cstdint>

namespace poolguard::session {

// A client's cancel key as sent in BackendKeyData: the "process id" and the secret key, 8 bytes on the wire
// (both big-endian). Peering (peer_id > 0) gives up 16 random bits of the process id to the peer id (wire
// bytes 1 and 2, low byte first) and 2 bits of the secret to a forwarding TTL (the low bits of wire byte 7),
// which a peer decrements each time it forwards: a request bounces between peers at most 3 times.
struct CancelKey {
    uint32_t pid = 0;
    uint32_t key = 0;

    static constexpr uint32_t kTtlMask = 0x03;
    static constexpr int kMaxPeerId = 16383;

    // A fresh key from 8 random bytes: the sign bit of the process id is cleared (some clients, such as
    // old pg_basebackup, mishandle a negative backend PID); with peering, the peer id and a full TTL.
    static CancelKey make(uint32_t random_pid, uint32_t random_key, int peer_id) {
        CancelKey k{random_pid & 0x7fffffffu, random_key};
        if (peer_id > 0) {
            const auto id = static_cast<uint32_t>(peer_id);
            k.pid = (k.pid & 0xff0000ffu) | ((id & 0xffu) << 16) | (((id >> 8) & 0xffu) << 8);
            k.key |= kTtlMask;
        }
        return k;
    }

    // The peer id a key carries (meaningful only when peering is on).
    int peer_id() const { return static_cast<int>(((pid >> 16) & 0xffu) | (((pid >> 8) & 0xffu) << 8)); }
    uint32_t ttl() const { return key & kTtlMask; }
    // The key as forwarded once more (TTL - 1); call only when ttl() > 0.
    CancelKey forwarded() const { return CancelKey{pid, key - 1}; }
    // The key as stored for the client: a request that came through peers has a lower TTL than the key
    // handed out, so with peering the TTL bits are set before the lookup.
    CancelKey stored_form(bool peering) const { return CancelKey{pid, peering ? (key | kTtlMask) : key}; }
    // One 64-bit value for the client registry.
    uint64_t packed() const { return (uint64_t{pid} << 32) | key; }
};

}  // namespace poolguard::session
