// Tests the PostgreSQL v3 wire primitives in wire.h: big-endian ints, MessageBuilder and FieldReader.
#include "protocol/pg/wire.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

namespace poolguard::protocol::pg {
namespace {

using namespace std::string_literals;

TEST(PgWire, ProtocolCodesMatchPostgres) {
    EXPECT_EQ(kProtocolVersion3, (3u << 16) | 0u);
    EXPECT_EQ(kCancelRequestCode, (1234u << 16) | 5678u);
    EXPECT_EQ(kSslRequestCode, (1234u << 16) | 5679u);
    EXPECT_EQ(kGssEncRequestCode, (1234u << 16) | 5680u);
}

TEST(PgWire, BigEndianRoundTrip) {
    for (uint32_t v :
         {0u, 1u, 0x7fu, 0x80u, 0xffu, 0x100u, 0x12345678u, 0x80000000u, 0xfffffffeu, 0xffffffffu}) {
        std::string out;
        append_be32(out, v);
        ASSERT_EQ(out.size(), 4u);
        EXPECT_EQ(read_be32(out.data()), v);
    }
    for (uint16_t v : {uint16_t{0}, uint16_t{1}, uint16_t{0x7f}, uint16_t{0x80}, uint16_t{0xff},
                       uint16_t{0x1234}, uint16_t{0x8000}, uint16_t{0xffff}}) {
        std::string out;
        append_be16(out, v);
        ASSERT_EQ(out.size(), 2u);
        EXPECT_EQ(read_be16(out.data()), v);
    }
}

TEST(PgWire, BigEndianByteOrder) {
    std::string out;
    append_be32(out, 0x01020304u);
    append_be16(out, 0xa1b2u);
    EXPECT_EQ(out, "\x01\x02\x03\x04\xa1\xb2"s);
    // High bytes must be read as unsigned (no sign extension from char).
    EXPECT_EQ(read_be32("\xff\xfe\xfd\xfc"), 0xfffefdfcu);
    EXPECT_EQ(read_be16("\x80\x81"), 0x8081u);
}

TEST(PgWire, BuilderPatchesLengthAfterTypeByte) {
    std::string out = "prefix";
    MessageBuilder m(out, 'Q');
    m.cstr("select 1");
    m.finish();
    EXPECT_EQ(out, "prefixQ\0\0\0\x0dselect 1\0"s);
}

TEST(PgWire, BuilderWithoutTypeByteCountsWholePacket) {
    std::string out;
    MessageBuilder m(out, 0);
    m.i32(kSslRequestCode);
    m.finish();
    EXPECT_EQ(out, "\0\0\0\x08\x04\xd2\x16\x2f"s);
}

TEST(PgWire, BuilderAllFieldKinds) {
    std::string out;
    MessageBuilder m(out, 'x');
    m.byte('b').i16(0x0102).i32(0x03040506).cstr("hi").bytes("\0raw"s);
    m.finish();
    const std::string body = "b\x01\x02\x03\x04\x05\x06hi\0\0raw"s;
    EXPECT_EQ(out, "x"s + "\0\0\0"s + static_cast<char>(4 + body.size()) + body);
}

TEST(PgWire, BuilderEmptyBody) {
    std::string out;
    MessageBuilder(out, 'S').finish();
    EXPECT_EQ(out, "S\0\0\0\x04"s);
}

TEST(PgWire, BuilderLargeLength) {
    std::string out;
    MessageBuilder m(out, 'd');
    m.bytes(std::string(0x012345, 'z'));
    m.finish();
    ASSERT_EQ(out.size(), 1u + 4u + 0x012345u);
    EXPECT_EQ(read_be32(out.data() + 1), 0x012345u + 4u);
}

TEST(PgWire, ReaderReadsFieldsInOrder) {
    const std::string body = "k\0v\0\x01\x02\x03\x04\x05\x06Xtail"s;
    FieldReader r(body);
    EXPECT_EQ(r.cstr(), "k");
    EXPECT_EQ(r.cstr(), "v");
    EXPECT_EQ(r.i32(), 0x01020304u);
    EXPECT_EQ(r.i16(), 0x0506u);
    EXPECT_EQ(r.byte(), 'X');
    EXPECT_EQ(r.rest(), "tail");
    EXPECT_EQ(r.bytes(4), "tail");
    EXPECT_TRUE(r.at_end());
    EXPECT_FALSE(r.bad());
    EXPECT_EQ(r.rest(), "");
}

TEST(PgWire, ReaderEmptyCStringAndZeroBytes) {
    const std::string body = "\0"s;
    FieldReader r(body);
    EXPECT_EQ(r.bytes(0), "");
    EXPECT_EQ(r.cstr(), "");
    EXPECT_TRUE(r.at_end());
    EXPECT_EQ(r.bytes(0), "");
    EXPECT_FALSE(r.bad());
}

TEST(PgWire, ReaderEmptyBodyFailsEveryRead) {
    {
        FieldReader r("");
        EXPECT_TRUE(r.at_end());
        EXPECT_EQ(r.byte(), std::nullopt);
        EXPECT_TRUE(r.bad());
    }
    {
        FieldReader r("");
        EXPECT_EQ(r.cstr(), std::nullopt);
        EXPECT_TRUE(r.bad());
    }
    {
        FieldReader r("");
        EXPECT_EQ(r.i16(), std::nullopt);
        EXPECT_TRUE(r.bad());
    }
    {
        FieldReader r("");
        EXPECT_EQ(r.i32(), std::nullopt);
        EXPECT_TRUE(r.bad());
    }
    {
        FieldReader r("");
        EXPECT_EQ(r.bytes(1), std::nullopt);
        EXPECT_TRUE(r.bad());
    }
}

TEST(PgWire, ReaderTruncatedFieldsGiveNulloptAndDoNotAdvance) {
    // Each read below is one byte short; the reader must refuse and stay where it was.
    const std::string body = "ab\x01\x02\x03"s;
    FieldReader r(body);
    EXPECT_EQ(r.cstr(), std::nullopt);  // no terminator anywhere
    EXPECT_TRUE(r.bad());
    EXPECT_EQ(r.rest(), body);
    EXPECT_EQ(r.bytes(6), std::nullopt);
    EXPECT_EQ(r.rest(), body);
    EXPECT_EQ(r.bytes(2), "ab");
    EXPECT_EQ(r.i32(), std::nullopt);  // 3 bytes left
    EXPECT_EQ(r.rest(), "\x01\x02\x03");
    EXPECT_EQ(r.i16(), 0x0102u);
    EXPECT_EQ(r.i16(), std::nullopt);  // 1 byte left
    EXPECT_EQ(r.byte(), '\x03');
    EXPECT_TRUE(r.at_end());
    EXPECT_EQ(r.byte(), std::nullopt);
    EXPECT_TRUE(r.bad());
}

TEST(PgWire, ReaderHugeLengthDoesNotOverflow) {
    const std::string body = "abcd"s;
    FieldReader r(body);
    EXPECT_EQ(r.bytes(0xffffffffu), std::nullopt);
    EXPECT_EQ(r.bytes(SIZE_MAX), std::nullopt);
    EXPECT_EQ(r.bytes(5), std::nullopt);
    EXPECT_TRUE(r.bad());
    EXPECT_EQ(r.bytes(4), "abcd");
}

TEST(PgWire, ReaderViewsStayInsideBody) {
    // The reader sees only a slice of a larger buffer; the bytes after the slice must never be read.
    const std::string buffer = "ab\0cd__\0after"s;
    const std::string_view body(buffer.data(), 5);  // "ab\0cd"
    FieldReader r(body);
    EXPECT_EQ(r.cstr(), "ab");
    EXPECT_EQ(r.cstr(), std::nullopt);  // "cd" is unterminated inside the slice
    EXPECT_EQ(r.bytes(3), std::nullopt);
    auto last = r.bytes(2);
    ASSERT_TRUE(last.has_value());
    EXPECT_EQ(*last, "cd");
    EXPECT_EQ(last->data() + last->size(), body.data() + body.size());
}

TEST(PgWire, ReaderRandomReadsNeverLeaveBody) {
    std::mt19937 rng(12345);
    for (int iter = 0; iter < 2000; ++iter) {
        std::string body(rng() % 24, '\0');
        for (auto& c : body)
            c = static_cast<char>(rng() % 4 == 0 ? 0 : rng());
        FieldReader r(body);
        size_t consumed = 0;
        for (int op = 0; op < 16; ++op) {
            const size_t before = body.size() - r.rest().size();
            bool ok = false;
            switch (rng() % 5) {
                case 0:
                    ok = r.cstr().has_value();
                    break;
                case 1:
                    ok = r.i32().has_value();
                    break;
                case 2:
                    ok = r.i16().has_value();
                    break;
                case 3:
                    ok = r.byte().has_value();
                    break;
                default:
                    ok = r.bytes(rng() % 8).has_value();
                    break;
            }
            const size_t after = body.size() - r.rest().size();
            if (!ok) {
                EXPECT_EQ(after, before);
            }
            EXPECT_LE(after, body.size());
            EXPECT_GE(after, before);
            consumed = after;
        }
        EXPECT_EQ(r.at_end(), consumed == body.size());
    }
}

}  // namespace
}  // namespace poolguard::protocol::pg
