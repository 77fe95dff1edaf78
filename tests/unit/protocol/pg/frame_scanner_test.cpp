// Tests the sans-I/O PostgreSQL v3 FrameScanner: whole vs streamed messages, chunking, limits and errors.
#include "protocol/pg/frame_scanner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/pg/wire.h"

namespace poolguard::protocol::pg {
namespace {

using namespace std::string_literals;

constexpr uint32_t kBigMax = 1u << 30;

std::string msg(char type, std::string_view body) {
    std::string out;
    MessageBuilder m(out, type);
    m.bytes(body);
    m.finish();
    return out;
}

// A raw header with any declared length (the body is not appended).
std::string header(char type, uint32_t len) {
    std::string out(1, type);
    append_be32(out, len);
    return out;
}

// One message as the caller saw it through the scanner.
struct Seen {
    char type = 0;
    uint32_t body_len = 0;
    SegmentKind first = SegmentKind::kNeedMore;
    int completes = 0;
    int pieces = 0;
};

// Feeds chunks to a scanner the way a session does: append to a buffer, take segments until kNeedMore, drop
// the bytes of each segment. Checks every per-segment invariant along the way.
class Feeder {
  public:
    explicit Feeder(FrameScanner& s) : s_(s) {}

    void feed(std::string_view chunk) {
        buf_.append(chunk);
        while (true) {
            const uint64_t rem_before = s_.remaining();
            const Segment seg = s_.next(buf_);
            if (seg.kind == SegmentKind::kNeedMore) {
                ASSERT_TRUE(seg.bytes.empty());
                ASSERT_EQ(s_.remaining(), rem_before);
                if (rem_before > 0) {
                    ASSERT_TRUE(buf_.empty()) << "streamed body bytes were left unconsumed";
                } else if (buf_.size() >= 5) {
                    ASSERT_TRUE(s_.is_whole(buf_[0])) << "a streamed message start was held back";
                    ASSERT_LT(buf_.size(), size_t{1} + read_be32(buf_.data() + 1));
                    ASSERT_EQ(s_.needed(buf_), size_t{1} + read_be32(buf_.data() + 1));
                }
                return;
            }
            ASSERT_NE(seg.kind, SegmentKind::kError) << s_.error();
            ASSERT_FALSE(seg.bytes.empty());
            ASSERT_EQ(seg.bytes.data(), buf_.data()) << "segment must start at the front of the buffer";
            ASSERT_LE(seg.bytes.size(), buf_.size());
            switch (seg.kind) {
                case SegmentKind::kWhole:
                    ASSERT_EQ(rem_before, 0u);
                    ASSERT_TRUE(s_.is_whole(seg.type));
                    ASSERT_TRUE(seg.completes);
                    ASSERT_EQ(seg.bytes.size(), size_t{5} + seg.body_len);
                    ASSERT_EQ(seg.bytes[0], seg.type);
                    ASSERT_EQ(read_be32(seg.bytes.data() + 1), seg.body_len + 4);
                    ASSERT_EQ(seg.body(), seg.bytes.substr(5));
                    seen_.push_back({seg.type, seg.body_len, seg.kind, 0, 0});
                    break;
                case SegmentKind::kStart:
                    ASSERT_EQ(rem_before, 0u);
                    ASSERT_FALSE(s_.is_whole(seg.type));
                    ASSERT_GE(seg.bytes.size(), 5u);
                    ASSERT_LE(seg.bytes.size(), size_t{5} + seg.body_len);
                    ASSERT_EQ(seg.bytes[0], seg.type);
                    ASSERT_EQ(read_be32(seg.bytes.data() + 1), seg.body_len + 4);
                    ASSERT_EQ(s_.remaining(), size_t{5} + seg.body_len - seg.bytes.size());
                    ASSERT_TRUE(seg.body().empty());
                    seen_.push_back({seg.type, seg.body_len, seg.kind, 0, 0});
                    break;
                case SegmentKind::kRest:
                    ASSERT_GT(rem_before, 0u);
                    ASSERT_FALSE(seen_.empty());
                    ASSERT_EQ(seen_.back().first, SegmentKind::kStart);
                    ASSERT_EQ(seen_.back().completes, 0);
                    ASSERT_EQ(seg.type, seen_.back().type);
                    ASSERT_EQ(seg.body_len, seen_.back().body_len);
                    ASSERT_LE(seg.bytes.size(), rem_before);
                    ASSERT_EQ(s_.remaining(), rem_before - seg.bytes.size());
                    ASSERT_TRUE(seg.body().empty());
                    break;
                default:
                    FAIL() << "unexpected segment kind";
            }
            ASSERT_EQ(seg.completes, s_.remaining() == 0);
            ASSERT_EQ(s_.at_boundary(), s_.remaining() == 0);
            seen_.back().completes += seg.completes ? 1 : 0;
            seen_.back().pieces += 1;
            out_.append(seg.bytes);
            buf_.erase(0, seg.bytes.size());
        }
    }

    const std::string& out() const { return out_; }
    const std::string& buffered() const { return buf_; }
    const std::vector<Seen>& seen() const { return seen_; }

  private:
    FrameScanner& s_;
    std::string buf_;
    std::string out_;
    std::vector<Seen> seen_;
};

TEST(FrameScanner, WholeMessageReturnedOnlyWhenComplete) {
    FrameScanner s(kBigMax, 1024);
    s.set_whole('Z');
    const std::string rfq = msg('Z', "I");
    for (size_t n = 0; n < rfq.size(); ++n) {
        const Segment seg = s.next(std::string_view(rfq).substr(0, n));
        EXPECT_EQ(seg.kind, SegmentKind::kNeedMore) << n;
        EXPECT_TRUE(seg.bytes.empty());
        EXPECT_TRUE(s.at_boundary());
        EXPECT_EQ(s.remaining(), 0u);
    }
    const std::string more = rfq + "Z\0\0"s;  // trailing bytes of a following message are not taken
    const Segment seg = s.next(more);
    ASSERT_EQ(seg.kind, SegmentKind::kWhole);
    EXPECT_EQ(seg.type, 'Z');
    EXPECT_EQ(seg.body_len, 1u);
    EXPECT_EQ(seg.bytes, rfq);
    EXPECT_EQ(seg.body(), "I");
    EXPECT_TRUE(seg.completes);
    EXPECT_TRUE(s.at_boundary());
}

TEST(FrameScanner, NeedMoreKeepsNothingAndRepeats) {
    FrameScanner s(kBigMax, 1024);
    s.set_whole('E');
    const std::string err = msg('E', "SERROR\0C08P01\0Mboom\0\0"s);
    const std::string_view partial = std::string_view(err).substr(0, err.size() - 1);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(s.next(partial).kind, SegmentKind::kNeedMore);
        EXPECT_EQ(s.needed(partial), err.size());
    }
    EXPECT_EQ(s.next(err).kind, SegmentKind::kWhole);
}

TEST(FrameScanner, StreamedMessageAsStartThenRest) {
    FrameScanner s(kBigMax, 1024);
    const std::string row = msg('D', "0123456789");
    Segment seg = s.next(std::string_view(row).substr(0, 8));  // header + 3 body bytes
    ASSERT_EQ(seg.kind, SegmentKind::kStart);
    EXPECT_EQ(seg.type, 'D');
    EXPECT_EQ(seg.body_len, 10u);
    EXPECT_EQ(seg.bytes, row.substr(0, 8));
    EXPECT_FALSE(seg.completes);
    EXPECT_FALSE(s.at_boundary());
    EXPECT_EQ(s.remaining(), 7u);

    EXPECT_EQ(s.next("").kind, SegmentKind::kNeedMore);
    EXPECT_EQ(s.remaining(), 7u);

    seg = s.next("3456");
    ASSERT_EQ(seg.kind, SegmentKind::kRest);
    EXPECT_EQ(seg.type, 'D');
    EXPECT_EQ(seg.body_len, 10u);
    EXPECT_EQ(seg.bytes, "3456");
    EXPECT_FALSE(seg.completes);
    EXPECT_EQ(s.remaining(), 3u);

    const std::string tail = "789" + msg('C', "SELECT 1\0"s);
    seg = s.next(tail);
    ASSERT_EQ(seg.kind, SegmentKind::kRest);
    EXPECT_EQ(seg.bytes, "789");  // never runs into the next message
    EXPECT_TRUE(seg.completes);
    EXPECT_TRUE(s.at_boundary());
    EXPECT_EQ(s.remaining(), 0u);

    seg = s.next(std::string_view(tail).substr(3));
    ASSERT_EQ(seg.kind, SegmentKind::kStart);
    EXPECT_EQ(seg.type, 'C');
    EXPECT_TRUE(seg.completes);
    EXPECT_EQ(seg.bytes, msg('C', "SELECT 1\0"s));
}

TEST(FrameScanner, StreamedMessageNeedsOnlyItsHeader) {
    FrameScanner s(kBigMax, 16);
    const std::string h = header('d', 4 + 1000);
    EXPECT_EQ(s.next(std::string_view(h).substr(0, 4)).kind, SegmentKind::kNeedMore);
    EXPECT_EQ(s.needed(std::string_view(h).substr(0, 4)), 5u);
    EXPECT_EQ(s.needed(h), 5u);
    const Segment seg = s.next(h);
    ASSERT_EQ(seg.kind, SegmentKind::kStart);
    EXPECT_EQ(seg.bytes.size(), 5u);
    EXPECT_EQ(s.remaining(), 1000u);
}

TEST(FrameScanner, StreamedMessageCompleteInOneSegment) {
    FrameScanner s(kBigMax, 1024);
    const std::string two = msg('D', "abc") + msg('D', "defg");
    Segment seg = s.next(two);
    ASSERT_EQ(seg.kind, SegmentKind::kStart);
    EXPECT_EQ(seg.bytes, msg('D', "abc"));
    EXPECT_TRUE(seg.completes);
    EXPECT_TRUE(s.at_boundary());
    seg = s.next(std::string_view(two).substr(8));
    ASSERT_EQ(seg.kind, SegmentKind::kStart);
    EXPECT_EQ(seg.bytes, msg('D', "defg"));
    EXPECT_TRUE(seg.completes);
}

TEST(FrameScanner, ZeroLengthBodies) {
    FrameScanner s(kBigMax, 1024);
    s.set_whole('S');
    const std::string sync = "S\0\0\0\x04"s;
    Segment seg = s.next(sync);
    ASSERT_EQ(seg.kind, SegmentKind::kWhole);
    EXPECT_EQ(seg.body_len, 0u);
    EXPECT_EQ(seg.bytes, sync);
    EXPECT_EQ(seg.body(), "");
    EXPECT_TRUE(seg.completes);

    const std::string term = "X\0\0\0\x04"s;
    const std::string two = term + term;
    seg = s.next(two);
    ASSERT_EQ(seg.kind, SegmentKind::kStart);
    EXPECT_EQ(seg.body_len, 0u);
    EXPECT_EQ(seg.bytes, term);
    EXPECT_TRUE(seg.completes);
    EXPECT_TRUE(s.at_boundary());
    EXPECT_EQ(s.remaining(), 0u);
    // The next call starts a new message rather than handing out an empty kRest.
    EXPECT_EQ(s.next("").kind, SegmentKind::kNeedMore);
    EXPECT_EQ(s.next(term).kind, SegmentKind::kStart);
}

TEST(FrameScanner, SetWholeCanBeUndoneAndHandlesHighBitTypes) {
    FrameScanner s(kBigMax, 1024);
    s.set_whole('\xff');
    EXPECT_TRUE(s.is_whole('\xff'));
    EXPECT_FALSE(s.is_whole('\x7f'));
    EXPECT_EQ(s.next(msg('\xff', "x")).kind, SegmentKind::kWhole);
    s.set_whole('\xff', false);
    EXPECT_FALSE(s.is_whole('\xff'));
    EXPECT_EQ(s.next(msg('\xff', "x")).kind, SegmentKind::kStart);
}

TEST(FrameScanner, LengthBelowFourIsError) {
    for (uint32_t len : {0u, 1u, 2u, 3u}) {
        for (bool whole : {false, true}) {
            FrameScanner s(kBigMax, 1024);
            s.set_whole('Q', whole);
            const std::string bad = header('Q', len) + "pad";
            const Segment seg = s.next(bad);
            EXPECT_EQ(seg.kind, SegmentKind::kError) << len << " whole=" << whole;
            EXPECT_TRUE(seg.bytes.empty());
            ASSERT_NE(s.error(), nullptr);
            EXPECT_NE(std::string(s.error()), "");
        }
    }
    FrameScanner ok(kBigMax, 1024);
    EXPECT_EQ(ok.next(header('Q', 4)).kind, SegmentKind::kStart);
    EXPECT_EQ(ok.error(), nullptr);
}

TEST(FrameScanner, LengthAboveMaxMessageIsError) {
    for (bool whole : {false, true}) {
        FrameScanner s(1000, 1u << 20);
        s.set_whole('D', whole);
        const Segment at_limit = s.next(header('D', 1000));  // header only: no body bytes yet
        EXPECT_EQ(at_limit.kind, whole ? SegmentKind::kNeedMore : SegmentKind::kStart);
        s.reset();
        EXPECT_EQ(s.next(header('D', 1001)).kind, SegmentKind::kError);
        EXPECT_EQ(s.next(header('D', 0xffffffffu)).kind, SegmentKind::kError);
        ASSERT_NE(s.error(), nullptr);
    }
}

TEST(FrameScanner, WholeMessageAboveMaxWholeIsErrorBeforeBuffering) {
    FrameScanner s(kBigMax, 100);
    s.set_whole('E');
    // At the limit: waits for the body.
    EXPECT_EQ(s.next(header('E', 100)).kind, SegmentKind::kNeedMore);
    EXPECT_EQ(s.next(header('E', 100) + std::string(96, 'x')).kind, SegmentKind::kWhole);
    // One over: rejected as soon as the header is visible, without waiting for (or buffering) the body.
    const Segment seg = s.next(header('E', 101));
    EXPECT_EQ(seg.kind, SegmentKind::kError);
    ASSERT_NE(s.error(), nullptr);
    // The same size is fine for a streamed type.
    FrameScanner t(kBigMax, 100);
    t.set_whole('E');
    EXPECT_EQ(t.next(header('D', 101)).kind, SegmentKind::kStart);
}

TEST(FrameScanner, ErrorIsSticky) {
    FrameScanner s(kBigMax, 1024);
    s.set_whole('Z');
    ASSERT_EQ(s.next(header('Z', 2)).kind, SegmentKind::kError);
    const char* why = s.error();
    ASSERT_NE(why, nullptr);
    for (std::string_view data : {std::string_view{}, std::string_view("Z"),
                                  std::string_view("Z\0\0\0\x05I", 6), std::string_view("D\0\0\0\x04", 5)}) {
        const Segment seg = s.next(data);
        EXPECT_EQ(seg.kind, SegmentKind::kError);
        EXPECT_TRUE(seg.bytes.empty());
        EXPECT_EQ(s.error(), why);
    }
    s.reset();
    EXPECT_EQ(s.error(), nullptr);
    EXPECT_EQ(s.next(msg('Z', "I")).kind, SegmentKind::kWhole);
}

TEST(FrameScanner, ErrorInMiddleOfStreamAfterGoodMessages) {
    FrameScanner s(kBigMax, 1024);
    Feeder f(s);
    f.feed(msg('D', "row1") + msg('D', "row2"));
    ASSERT_FALSE(testing::Test::HasFatalFailure());
    EXPECT_EQ(f.seen().size(), 2u);
    const Segment seg = s.next(header('D', 3));
    EXPECT_EQ(seg.kind, SegmentKind::kError);
    EXPECT_EQ(s.next(msg('D', "row3")).kind, SegmentKind::kError);
}

TEST(FrameScanner, NeededReportsWholeMessageSize) {
    FrameScanner s(kBigMax, 1u << 20);
    s.set_whole('T');
    EXPECT_EQ(s.needed(""), 5u);
    EXPECT_EQ(s.needed("T\0\0"s), 5u);
    const std::string h = header('T', 70000);
    EXPECT_EQ(s.next(h).kind, SegmentKind::kNeedMore);
    EXPECT_EQ(s.needed(h), 70001u);
    EXPECT_EQ(s.needed(h + "partial"), 70001u);
    EXPECT_EQ(s.needed(header('D', 70000)), 5u);  // streamed: the header alone makes progress
}

TEST(FrameScanner, ByteByByteFeed) {
    FrameScanner s(kBigMax, 1024);
    s.set_whole('Z');
    s.set_whole('E');
    const std::string stream = msg('D', "hello") + msg('Z', "I") + msg('X', "") + msg('E', "SERROR\0\0"s) +
                               msg('d', std::string(40, 'c'));
    Feeder f(s);
    for (char c : stream) {
        f.feed(std::string_view(&c, 1));
        ASSERT_FALSE(testing::Test::HasFatalFailure());
    }
    EXPECT_EQ(f.out(), stream);
    EXPECT_TRUE(f.buffered().empty());
    ASSERT_EQ(f.seen().size(), 5u);
    const std::vector<std::pair<char, uint32_t>> expect{{'D', 5}, {'Z', 1}, {'X', 0}, {'E', 8}, {'d', 40}};
    for (size_t i = 0; i < expect.size(); ++i) {
        EXPECT_EQ(f.seen()[i].type, expect[i].first);
        EXPECT_EQ(f.seen()[i].body_len, expect[i].second);
        EXPECT_EQ(f.seen()[i].completes, 1);
    }
    // Whole messages arrive in one piece; streamed ones byte by byte: the header, then one kRest per byte.
    EXPECT_EQ(f.seen()[1].pieces, 1);
    EXPECT_EQ(f.seen()[3].pieces, 1);
    EXPECT_EQ(f.seen()[0].pieces, 1 + 5);
    EXPECT_EQ(f.seen()[2].pieces, 1);
    EXPECT_EQ(f.seen()[4].pieces, 1 + 40);
    EXPECT_TRUE(s.at_boundary());
}

// Property: any stream of well-formed messages, cut anywhere, reassembles to the same bytes and the same
// message sequence, with `completes` set exactly once per message.
TEST(FrameScanner, RandomStreamsRandomChunks) {
    std::mt19937 rng(20240601);
    const std::string types = "DdZSEKCTQPBpXHc1n\x80\xff";
    for (int round = 0; round < 300; ++round) {
        FrameScanner s(kBigMax, 1u << 16);
        for (char t : std::string_view("ZSEKC"))
            s.set_whole(t);
        if (rng() % 2) s.set_whole('D');  // sometimes even DataRow is buffered whole

        std::vector<std::pair<char, uint32_t>> expect;
        std::string stream;
        const int count = 1 + static_cast<int>(rng() % 40);
        for (int i = 0; i < count; ++i) {
            const char type = types[rng() % types.size()];
            uint32_t body_len = 0;
            const unsigned pick = rng() % 100;
            if (pick < 25) {
                body_len = 0;
            } else if (pick < 65) {
                body_len = 1 + rng() % 16;
            } else if (pick < 95) {
                body_len = 17 + rng() % 300;
            } else {
                body_len = 300 + rng() % 5000;
            }
            std::string body(body_len, '\0');
            for (auto& c : body)
                c = static_cast<char>(rng());
            stream += msg(type, body);
            expect.emplace_back(type, body_len);
        }

        Feeder f(s);
        const unsigned mode = round % 4;
        size_t pos = 0;
        while (pos < stream.size()) {
            size_t n = 1;
            if (mode == 1) n = 1 + rng() % 7;
            if (mode == 2) n = 1 + rng() % 700;
            if (mode == 3) n = rng() % 3 == 0 ? stream.size() : 1 + rng() % 4096;
            n = std::min(n, stream.size() - pos);
            f.feed(std::string_view(stream).substr(pos, n));
            ASSERT_FALSE(testing::Test::HasFatalFailure()) << "round " << round << " pos " << pos;
            pos += n;
        }
        ASSERT_EQ(f.out(), stream) << "round " << round;
        ASSERT_TRUE(f.buffered().empty());
        ASSERT_TRUE(s.at_boundary());
        ASSERT_EQ(f.seen().size(), expect.size()) << "round " << round;
        for (size_t i = 0; i < expect.size(); ++i) {
            EXPECT_EQ(f.seen()[i].type, expect[i].first) << "round " << round << " msg " << i;
            EXPECT_EQ(f.seen()[i].body_len, expect[i].second) << "round " << round << " msg " << i;
            EXPECT_EQ(f.seen()[i].completes, 1) << "round " << round << " msg " << i;
            EXPECT_EQ(f.seen()[i].first,
                      s.is_whole(expect[i].first) ? SegmentKind::kWhole : SegmentKind::kStart);
        }
    }
}

// A 100 MB DataRow passes through in 1 MB pieces that point straight into the caller's chunk: nothing of it
// is copied or held back by the scanner.
TEST(FrameScanner, HugeStreamedDataRowIsNotBuffered) {
    constexpr uint32_t kBody = 100u << 20;
    constexpr size_t kChunk = 1u << 20;
    FrameScanner s(kBigMax, 1u << 16);
    s.set_whole('Z');
    s.set_whole('D', false);

    std::string chunk(kChunk, 'r');
    const std::string h = header('D', kBody + 4);
    chunk.replace(0, h.size(), h);

    Segment seg = s.next(chunk);
    ASSERT_EQ(seg.kind, SegmentKind::kStart);
    EXPECT_EQ(seg.body_len, kBody);
    EXPECT_EQ(seg.bytes.data(), chunk.data());
    EXPECT_EQ(seg.bytes.size(), kChunk);
    uint64_t body_seen = kChunk - 5;
    EXPECT_EQ(s.remaining(), kBody - body_seen);

    std::string tail_chunk(kChunk, 'r');
    int pieces = 1;
    while (s.remaining() > 0) {
        const uint64_t left = s.remaining();
        const bool last = left <= kChunk;
        std::string_view data(chunk);
        if (last) {
            // The final chunk carries the end of the row and a following ReadyForQuery.
            tail_chunk.resize(left);
            tail_chunk += msg('Z', "I");
            data = tail_chunk;
        }
        seg = s.next(data);
        ASSERT_EQ(seg.kind, SegmentKind::kRest);
        ASSERT_EQ(seg.bytes.data(), data.data());
        ASSERT_EQ(seg.bytes.size(), std::min<uint64_t>(left, data.size()));
        ASSERT_EQ(seg.completes, last);
        body_seen += seg.bytes.size();
        ++pieces;
        if (last) {
            seg = s.next(data.substr(seg.bytes.size()));
            ASSERT_EQ(seg.kind, SegmentKind::kWhole);
            EXPECT_EQ(seg.body(), "I");
        }
    }
    EXPECT_EQ(body_seen, kBody);
    EXPECT_EQ(pieces, 101);
    EXPECT_TRUE(s.at_boundary());
}

// Fuzz: arbitrary bytes in arbitrary chunks never crash the scanner or make it hand out bytes it was not
// given.
TEST(FrameScanner, FuzzRandomBytes) {
    std::mt19937 rng(7);
    for (int iter = 0; iter < 20000; ++iter) {
        FrameScanner s(1 + rng() % 512, rng() % 512);
        for (int k = 0; k < 8; ++k)
            s.set_whole(static_cast<char>(rng()));
        if (rng() % 2) s.set_whole('\0');
        std::string input(rng() % 96, '\0');
        for (auto& c : input) {
            // Mostly small bytes so that lengths are often plausible.
            c = static_cast<char>(rng() % 3 == 0 ? rng() : rng() % 12);
        }
        std::string buf;
        bool errored = false;
        size_t pos = 0;
        size_t taken = 0;
        while (pos < input.size()) {
            const size_t n = std::min<size_t>(1 + rng() % 16, input.size() - pos);
            buf.append(input, pos, n);
            pos += n;
            while (true) {
                const Segment seg = s.next(buf);
                (void)s.needed(buf);
                if (seg.kind == SegmentKind::kNeedMore) {
                    ASSERT_TRUE(seg.bytes.empty());
                    break;
                }
                if (seg.kind == SegmentKind::kError) {
                    ASSERT_TRUE(seg.bytes.empty());
                    ASSERT_NE(s.error(), nullptr);
                    errored = true;
                    break;
                }
                ASSERT_FALSE(errored);
                ASSERT_FALSE(seg.bytes.empty());
                ASSERT_EQ(seg.bytes.data(), buf.data());
                ASSERT_LE(seg.bytes.size(), buf.size());
                taken += seg.bytes.size();
                buf.erase(0, seg.bytes.size());
            }
            if (errored) {
                ASSERT_EQ(s.next(buf).kind, SegmentKind::kError);
                break;
            }
        }
        ASSERT_EQ(taken + buf.size(), pos);
    }
}

}  // namespace
}  // namespace poolguard::protocol::pg
