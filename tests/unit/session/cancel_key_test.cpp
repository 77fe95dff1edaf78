// Owns the unit tests of the cancel key layout (peer id, TTL) and of where a cancel request is routed.
#include <gtest/gtest.h>

#include "session/cancel_key.h"
#include "session/peer_cancel.h"

namespace poolguard::session {
namespace {

// The wire bytes of a key (BackendKeyData: process id then secret, both big-endian).
std::array<uint8_t, 8> wire(const CancelKey& k) {
    return {static_cast<uint8_t>(k.pid >> 24), static_cast<uint8_t>(k.pid >> 16),
            static_cast<uint8_t>(k.pid >> 8),  static_cast<uint8_t>(k.pid),
            static_cast<uint8_t>(k.key >> 24), static_cast<uint8_t>(k.key >> 16),
            static_cast<uint8_t>(k.key >> 8),  static_cast<uint8_t>(k.key)};
}

TEST(CancelKey, WithoutPeeringOnlyTheSignBitIsCleared) {
    const CancelKey k = CancelKey::make(0xffffffffu, 0xfffffffcu, 0);
    EXPECT_EQ(k.pid, 0x7fffffffu);
    EXPECT_EQ(k.key, 0xfffffffcu);  // the secret is untouched: no TTL without peering
}

// PgBouncer 1.21+'s layout, so poolguard and PgBouncer can be peers: the peer id in wire bytes 1 (low) and
// 2 (high) of the process id, a TTL of 3 in the low two bits of wire byte 7.
TEST(CancelKey, PeerIdAndTtlSitWhereAPgBouncerPeerReadsThem) {
    const CancelKey k = CancelKey::make(0xa1b2c3d4u, 0x11223340u, 0x1234);
    const auto b = wire(k);
    EXPECT_EQ(b[0], 0x21);  // 0xa1 with the sign bit cleared
    EXPECT_EQ(b[1], 0x34);
    EXPECT_EQ(b[2], 0x12);
    EXPECT_EQ(b[3], 0xd4);
    EXPECT_EQ(b[7] & 0x03, 0x03);
    EXPECT_EQ(k.peer_id(), 0x1234);
    EXPECT_EQ(k.ttl(), 3u);
    EXPECT_EQ(CancelKey::make(0, 0, CancelKey::kMaxPeerId).peer_id(), CancelKey::kMaxPeerId);
}

TEST(CancelKey, ForwardingLowersTheTtlAndTheStoredFormMatchesAgain) {
    const CancelKey handed_out = CancelKey::make(0x01020304u, 0x55667788u, 7);
    CancelKey k = handed_out;
    for (uint32_t ttl = 3; ttl > 0; --ttl) {
        EXPECT_EQ(k.ttl(), ttl);
        k = k.forwarded();
        EXPECT_EQ(k.peer_id(), 7);
        EXPECT_EQ(k.stored_form(true).packed(), handed_out.packed());
    }
    EXPECT_EQ(k.ttl(), 0u);
    EXPECT_NE(k.stored_form(false).packed(), handed_out.packed());
}

config::Config peered(int self) {
    config::Config c;
    c.peer_id = self;
    c.default_pool_size = 9;
    c.cancel_wait_timeout = std::chrono::seconds(3);
    c.peers.push_back(config::PeerConfig{1, "/tmp/pg1", 6432, std::nullopt, 1});
    c.peers.push_back(config::PeerConfig{2, "10.0.0.2", 6543, 4, 2});
    return c;
}

TEST(CancelRoute, OwnKeysAndNoPeeringStayLocal) {
    EXPECT_FALSE(route_cancel(CancelKey::make(5, 6, 1), peered(1)).forward);
    // Peering off: even a key carrying a peer id is looked up here.
    EXPECT_FALSE(route_cancel(CancelKey::make(5, 6, 2), peered(0)).forward);
}

TEST(CancelRoute, AnotherPeersKeyGoesToItsEntry) {
    const CancelRoute to2 = route_cancel(CancelKey::make(5, 6, 2), peered(1));
    ASSERT_TRUE(to2.forward);
    EXPECT_TRUE(to2.refusal.empty()) << to2.refusal;
    EXPECT_EQ(to2.peer.host, "10.0.0.2");
    EXPECT_EQ(to2.peer.port, 6543);
    EXPECT_EQ(to2.limit, 4);
    EXPECT_EQ(to2.timeout, std::chrono::milliseconds(3000));
    const CancelRoute to1 = route_cancel(CancelKey::make(5, 6, 1), peered(2));
    ASSERT_TRUE(to1.forward);
    EXPECT_EQ(to1.limit, 9);  // no pool_size: default_pool_size
}

TEST(CancelRoute, SpentTtlAndUnknownPeersAreRefused) {
    CancelKey spent = CancelKey::make(5, 6, 2).forwarded().forwarded().forwarded();
    const CancelRoute r = route_cancel(spent, peered(1));
    EXPECT_TRUE(r.forward);
    EXPECT_NE(r.refusal.find("3 times"), std::string::npos) << r.refusal;
    const CancelRoute unknown = route_cancel(CancelKey::make(5, 6, 77), peered(1));
    EXPECT_TRUE(unknown.forward);
    EXPECT_NE(unknown.refusal.find("no such peer"), std::string::npos) << unknown.refusal;
}

}  // namespace
}  // namespace poolguard::session
