// Unit tests of NegotiateProtocolVersion (issue 15) and of first_message_ready (a server is bound only for a
// complete first message).
#include <gtest/gtest.h>

#include "protocol/pg/frame_scanner.h"
#include "protocol/pg/startup_negotiation.h"
#include "protocol/pg/wire.h"

namespace poolguard::protocol::pg {
namespace {

StartupPacket startup(uint32_t minor, std::vector<std::pair<std::string, std::string>> params) {
    StartupPacket sp;
    sp.protocol = (3u << 16) | minor;
    sp.params = std::move(params);
    return sp;
}

TEST(NegotiateProtocol, ThreeZeroWithoutOptionsNeedsNone) {
    auto sp = startup(0, {{"user", "u"}, {"database", "d"}});
    EXPECT_TRUE(negotiate_protocol(sp).empty());
    EXPECT_EQ(sp.params.size(), 2u);
}

TEST(NegotiateProtocol, ThreeTwoGetsTheNewestMinorWeServe) {
    auto sp = startup(2, {{"user", "u"}});
    const std::string v = negotiate_protocol(sp);
    ASSERT_EQ(v.size(), 13u);
    EXPECT_EQ(v[0], 'v');
    EXPECT_EQ(read_be32(v.data() + 1), 12u);
    EXPECT_EQ(read_be32(v.data() + 5), 0u);  // minor version 0
    EXPECT_EQ(read_be32(v.data() + 9), 0u);  // no unknown options
}

TEST(NegotiateProtocol, UnknownProtocolOptionsAreNamedAndRemoved) {
    auto sp = startup(0, {{"user", "u"}, {"_pq_.compression", "on"}, {"_pq_.x", "1"}});
    const std::string v = negotiate_protocol(sp);
    ASSERT_FALSE(v.empty());
    EXPECT_EQ(read_be32(v.data() + 9), 2u);
    EXPECT_EQ(v.substr(13), std::string("_pq_.compression\0_pq_.x\0", 24));
    ASSERT_EQ(sp.params.size(), 1u);
    EXPECT_EQ(sp.params[0].first, "user");
}

std::string msg(char type, const std::string& body) {
    std::string out(1, type);
    const uint32_t n = static_cast<uint32_t>(body.size() + 4);
    out += static_cast<char>(n >> 24);
    out += static_cast<char>(n >> 16);
    out += static_cast<char>(n >> 8);
    out += static_cast<char>(n);
    return out + body;
}

TEST(FirstMessageReady, OnlyACompleteMessageBindsAServer) {
    const std::string q = msg('Q', std::string("select 1\0", 9));
    EXPECT_TRUE(first_message_ready(q, 1 << 20).ready);
    for (size_t cut = 0; cut < q.size(); ++cut) {
        const auto f = first_message_ready(std::string_view(q).substr(0, cut), 1 << 20);
        EXPECT_FALSE(f.ready) << cut;
        EXPECT_EQ(f.need, cut < 5 ? 5u : q.size()) << cut;
    }
}

TEST(FirstMessageReady, LargeAndMalformedMessagesDoNotWait) {
    const std::string big = msg('d', std::string(5000, 'x'));
    EXPECT_TRUE(first_message_ready(std::string_view(big).substr(0, 10), 4096).ready);
    EXPECT_TRUE(first_message_ready(std::string("Q\0\0\0\2", 5), 4096).ready);  // the scanner refuses it
}

}  // namespace
}  // namespace poolguard::protocol::pg
