// Tests PostgreSQL v3 message encoding/decoding in protocol/pg/messages: startup, round trips, exact bytes.
#include "protocol/pg/messages.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "protocol/pg/wire.h"

namespace poolguard::protocol::pg {
namespace {

using namespace std::string_literals;
using Params = std::vector<std::pair<std::string, std::string>>;

// A startup-phase packet: 4-byte length (covering itself) followed by `payload`.
std::string packet(std::string_view payload) {
    std::string out;
    append_be32(out, static_cast<uint32_t>(4 + payload.size()));
    out.append(payload);
    return out;
}

std::string be32(uint32_t v) {
    std::string out;
    append_be32(out, v);
    return out;
}

// Splits one typed message into (type, body), checking its length field.
std::pair<char, std::string> split(std::string_view m) {
    EXPECT_GE(m.size(), 5u);
    if (m.size() < 5) return {};
    EXPECT_EQ(read_be32(m.data() + 1), m.size() - 1);
    return {m[0], std::string(m.substr(5))};
}

void expect_protocol_violation(std::string_view pkt) {
    const auto r = parse_startup_packet(pkt);
    ASSERT_FALSE(r.has_value()) << "accepted a malformed packet of " << pkt.size() << " bytes";
    EXPECT_EQ(r.error().sqlstate, "08P01") << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
}

// ---- startup packets ----

TEST(PgMessages, StartupMessageParamsInOrder) {
    const std::string pkt = packet(be32(kProtocolVersion3) +
                                   "user\0alice\0database\0db1\0application_name\0\0options\0-c x=1\0\0"s);
    const auto r = parse_startup_packet(pkt);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->kind, StartupKind::kStartup);
    EXPECT_EQ(r->protocol, kProtocolVersion3);
    const Params expect{
        {"user", "alice"}, {"database", "db1"}, {"application_name", ""}, {"options", "-c x=1"}};
    EXPECT_EQ(r->params, expect);
    ASSERT_NE(r->param("database"), nullptr);
    EXPECT_EQ(*r->param("database"), "db1");
    ASSERT_NE(r->param("application_name"), nullptr);
    EXPECT_EQ(*r->param("application_name"), "");
    EXPECT_EQ(r->param("missing"), nullptr);
    EXPECT_EQ(r->param("User"), nullptr);
}

TEST(PgMessages, StartupMessageWithNoParams) {
    const auto r = parse_startup_packet(packet(be32(kProtocolVersion3) + "\0"s));
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_TRUE(r->params.empty());
}

TEST(PgMessages, StartupMessageDuplicateParamsKeptInOrder) {
    const auto r = parse_startup_packet(packet(be32(kProtocolVersion3) + "user\0a\0user\0b\0\0"s));
    ASSERT_TRUE(r.has_value()) << r.error().message;
    ASSERT_EQ(r->params.size(), 2u);
    EXPECT_EQ(r->params[1].second, "b");
    EXPECT_EQ(*r->param("user"), "a");  // first wins in lookup
}

TEST(PgMessages, SslAndGssEncRequests) {
    const std::string ssl = "\0\0\0\x08\x04\xd2\x16\x2f"s;
    auto r = parse_startup_packet(ssl);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->kind, StartupKind::kSslRequest);
    EXPECT_EQ(r->protocol, kSslRequestCode);
    EXPECT_TRUE(r->params.empty());

    r = parse_startup_packet(packet(be32(kGssEncRequestCode)));
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->kind, StartupKind::kGssEncRequest);
}

TEST(PgMessages, SslRequestWithTrailingBytesIsRejected) {
    const auto r = parse_startup_packet(packet(be32(kSslRequestCode) + "\0\0\0\0"s));
    ASSERT_FALSE(r.has_value());
    EXPECT_FALSE(r.error().sqlstate.empty());
}

TEST(PgMessages, CancelRequest) {
    const std::string pkt = packet(be32(kCancelRequestCode) + be32(0x01020304u) + be32(0xdeadbeefu));
    ASSERT_EQ(pkt.size(), 16u);
    const auto r = parse_startup_packet(pkt);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->kind, StartupKind::kCancel);
    EXPECT_EQ(r->cancel_pid, 0x01020304u);
    EXPECT_EQ(r->cancel_key, 0xdeadbeefu);
}

TEST(PgMessages, CancelRequestWrongLength) {
    expect_protocol_violation(packet(be32(kCancelRequestCode) + be32(1)));
    expect_protocol_violation(packet(be32(kCancelRequestCode) + be32(1) + be32(2) + "x"));
    expect_protocol_violation(packet(be32(kCancelRequestCode)));
}

TEST(PgMessages, AppendCancelRequestRoundTrip) {
    std::string out;
    append_cancel_request(out, 77, 0xfffffffeu);
    EXPECT_EQ(out, "\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x4d\xff\xff\xff\xfe"s);
    const auto r = parse_startup_packet(out);
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->kind, StartupKind::kCancel);
    EXPECT_EQ(r->cancel_pid, 77u);
    EXPECT_EQ(r->cancel_key, 0xfffffffeu);
}

TEST(PgMessages, WrongProtocolVersion) {
    for (uint32_t version : {(2u << 16), (4u << 16), 0u, (1234u << 16) | 5681u}) {
        const auto r = parse_startup_packet(packet(be32(version) + "user\0u\0\0"s));
        ASSERT_FALSE(r.has_value()) << version;
        EXPECT_EQ(r.error().sqlstate, "0A000") << r.error().message;
        EXPECT_NE(r.error().message.find("protocol"), std::string::npos) << r.error().message;
    }
    const auto r = parse_startup_packet(packet(be32(2u << 16) + "user\0u\0\0"s));
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().message.find("2.0"), std::string::npos) << r.error().message;
}

TEST(PgMessages, MalformedStartupPackets) {
    const std::string v3 = be32(kProtocolVersion3);
    // Too short to hold length + code.
    expect_protocol_violation("");
    expect_protocol_violation("\0\0\0\x04"s);
    expect_protocol_violation("\0\0\0\x07\0\x03\0"s);
    // Declared length differs from the packet size (both directions).
    std::string pkt = packet(v3 + "user\0u\0\0"s);
    std::string longer = pkt;
    longer[3] = static_cast<char>(longer[3] + 1);
    expect_protocol_violation(longer);
    std::string shorter = pkt;
    shorter[3] = static_cast<char>(shorter[3] - 1);
    expect_protocol_violation(shorter);
    expect_protocol_violation(pkt.substr(0, pkt.size() - 1));
    expect_protocol_violation(pkt + "x");
    // Missing final terminator.
    expect_protocol_violation(packet(v3));
    expect_protocol_violation(packet(v3 + "user\0u\0"s));
    // Unterminated name / value.
    expect_protocol_violation(packet(v3 + "user"s));
    expect_protocol_violation(packet(v3 + "user\0u"s));
    // Odd number of strings (a name without a value).
    expect_protocol_violation(packet(v3 + "user\0u\0database\0"s));
    expect_protocol_violation(packet(v3 + "user\0"s));
    // Bytes after the terminator.
    expect_protocol_violation(packet(v3 + "user\0u\0\0x"s));
    expect_protocol_violation(packet(v3 + "\0\0"s));
}

TEST(PgMessages, AppendStartupLayout) {
    std::string out = "keep";
    append_startup(out, {{"user", "bob"}, {"database", "d"}});
    const std::string expect = "\0\0\0\x1d\0\x03\0\0user\0bob\0database\0d\0\0"s;
    EXPECT_EQ(out, "keep" + expect);
    const auto r = parse_startup_packet(std::string_view(out).substr(4));
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->params, (Params{{"user", "bob"}, {"database", "d"}}));

    std::string empty;
    append_startup(empty, {});
    EXPECT_EQ(empty, "\0\0\0\x09\0\x03\0\0\0"s);
}

// ---- exact bytes ----

TEST(PgMessages, ExactBytesOfSimpleMessages) {
    std::string out;
    append_ready_for_query(out, 'I');
    EXPECT_EQ(out, "Z\0\0\0\5I"s);
    out.clear();
    append_ready_for_query(out, 'T');
    EXPECT_EQ(out, "Z\0\0\0\5T"s);
    out.clear();
    append_sync(out);
    EXPECT_EQ(out, "S\0\0\0\4"s);
    out.clear();
    append_terminate(out);
    EXPECT_EQ(out, "X\0\0\0\4"s);
    out.clear();
    append_query(out, "select 1");
    EXPECT_EQ(out, "Q\0\0\0\x0dselect 1\0"s);
    out.clear();
    append_empty_query(out);
    EXPECT_EQ(out, "I\0\0\0\4"s);
    out.clear();
    append_command_complete(out, "SELECT 1");
    EXPECT_EQ(out, "C\0\0\0\x0dSELECT 1\0"s);
    out.clear();
    append_backend_key(out, 0x0102, 0xa0b0c0d0u);
    EXPECT_EQ(out, "K\0\0\0\x0c\0\0\x01\x02\xa0\xb0\xc0\xd0"s);
    out.clear();
    append_parameter_status(out, "TimeZone", "UTC");
    EXPECT_EQ(out, "S\0\0\0\x11TimeZone\0UTC\0"s);
    out.clear();
    append_auth_request(out, AuthRequest::kOk);
    EXPECT_EQ(out, "R\0\0\0\x08\0\0\0\0"s);
    out.clear();
    append_auth_request(out, AuthRequest::kMd5Password, "\x01\x02\x03\x04");
    EXPECT_EQ(out, "R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04"s);
    out.clear();
    append_password(out, "pw");
    EXPECT_EQ(out, "p\0\0\0\x07pw\0"s);
}

TEST(PgMessages, ExactBytesOfErrorResponse) {
    std::string out;
    append_error(out, "FATAL", "28P01", "bad pw");
    const std::string body = "SFATAL\0VFATAL\0C28P01\0Mbad pw\0\0"s;
    EXPECT_EQ(out, "E"s + be32(4 + body.size()) + body);

    out.clear();
    append_error(out, ErrorFields{"ERROR", "", "m", "", ""});
    EXPECT_EQ(split(out).second, "SERROR\0VERROR\0CXX000\0Mm\0\0"s);  // empty sqlstate becomes XX000

    out.clear();
    append_notice(out, "hello");
    const auto [type, nbody] = split(out);
    EXPECT_EQ(type, 'N');
    EXPECT_EQ(nbody, "SNOTICE\0VNOTICE\0C00000\0Mhello\0\0"s);
}

TEST(PgMessages, ExactBytesOfRowDescriptionAndDataRow) {
    std::string out;
    append_row_description(out, {"a"});
    const std::string field =
        "a\0"s + be32(0) + "\0\0"s + be32(25) + "\xff\xff"s + be32(0xffffffffu) + "\0\0"s;
    EXPECT_EQ(out, "T"s + be32(4 + 2 + field.size()) + "\0\x01"s + field);

    out.clear();
    append_data_row(out, {std::string("xy"), std::nullopt, std::string()});
    const std::string body = "\0\x03"s + be32(2) + "xy" + be32(0xffffffffu) + be32(0);
    EXPECT_EQ(out, "D"s + be32(4 + body.size()) + body);
}

TEST(PgMessages, AppendsAccumulate) {
    std::string out;
    append_query(out, "select 1");
    append_sync(out);
    append_ready_for_query(out, 'E');
    EXPECT_EQ(out, "Q\0\0\0\x0dselect 1\0S\0\0\0\4Z\0\0\0\5E"s);
}

// ---- round trips ----

TEST(PgMessages, ErrorFieldsRoundTrip) {
    ErrorFields e{"FATAL", "57P01", "terminating connection", "because of shutdown", "try again"};
    std::string out;
    append_error(out, e);
    auto [type, body] = split(out);
    EXPECT_EQ(type, 'E');
    const ErrorFields p = parse_error_fields(body);
    EXPECT_EQ(p.severity, "FATAL");
    EXPECT_EQ(p.sqlstate, "57P01");
    EXPECT_EQ(p.message, "terminating connection");
    EXPECT_EQ(p.detail, "because of shutdown");
    EXPECT_EQ(p.hint, "try again");

    out.clear();
    append_error(out, "ERROR", "42601", "");
    const ErrorFields q = parse_error_fields(split(out).second);
    EXPECT_EQ(q.severity, "ERROR");
    EXPECT_EQ(q.sqlstate, "42601");
    EXPECT_EQ(q.message, "");
    EXPECT_EQ(q.detail, "");
    EXPECT_EQ(q.hint, "");
}

TEST(PgMessages, ParseErrorFieldsFromServerShapes) {
    // A localized server: S is translated, V is not; V wins. Unknown fields are skipped.
    const ErrorFields e = parse_error_fields("SFEHLER\0VERROR\0C23505\0Mdoppelt\0Ffile.c\0L42\0Rfn\0\0"s);
    EXPECT_EQ(e.severity, "ERROR");
    EXPECT_EQ(e.sqlstate, "23505");
    EXPECT_EQ(e.message, "doppelt");
    // Pre-9.6 server: S only.
    EXPECT_EQ(parse_error_fields("SWARNING\0Mx\0\0"s).severity, "WARNING");
    // Empty / truncated bodies give what was readable, never a crash.
    EXPECT_EQ(parse_error_fields("").severity, "");
    EXPECT_EQ(parse_error_fields("\0"s).message, "");
    const ErrorFields t = parse_error_fields("C08P01\0Mcut"s);
    EXPECT_EQ(t.sqlstate, "08P01");
    EXPECT_EQ(t.message, "");
    EXPECT_EQ(parse_error_fields("M"s).message, "");
}

TEST(PgMessages, ParameterStatusRoundTrip) {
    std::string out;
    append_parameter_status(out, "server_version", "16.2");
    const auto [type, body] = split(out);
    EXPECT_EQ(type, 'S');
    const auto p = parse_parameter_status(body);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, "server_version");
    EXPECT_EQ(p->second, "16.2");

    out.clear();
    append_parameter_status(out, "application_name", "");
    const auto e = parse_parameter_status(split(out).second);
    ASSERT_TRUE(e.has_value());
    EXPECT_EQ(e->second, "");

    EXPECT_EQ(parse_parameter_status(""), std::nullopt);
    EXPECT_EQ(parse_parameter_status("name"), std::nullopt);
    EXPECT_EQ(parse_parameter_status("name\0value"s), std::nullopt);
}

TEST(PgMessages, BackendKeyRoundTrip) {
    std::string out;
    append_backend_key(out, 4242, 0x80000001u);
    const auto p = parse_backend_key(split(out).second);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, 4242u);
    EXPECT_EQ(p->second, 0x80000001u);
    EXPECT_EQ(parse_backend_key(""), std::nullopt);
    EXPECT_EQ(parse_backend_key("\0\0\0\1\0\0\0"s), std::nullopt);
}

TEST(PgMessages, AuthRequestRoundTrip) {
    std::string out;
    append_auth_request(out, AuthRequest::kMd5Password, "salt");
    const std::string msg_body1 = split(out).second;
    auto p = parse_auth_request(msg_body1);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, static_cast<uint32_t>(AuthRequest::kMd5Password));
    EXPECT_EQ(p->second, "salt");

    out.clear();
    append_auth_request(out, AuthRequest::kCleartextPassword);
    const std::string msg_body2 = split(out).second;
    p = parse_auth_request(msg_body2);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, 3u);
    EXPECT_EQ(p->second, "");

    out.clear();
    append_auth_request(out, AuthRequest::kSaslFinal, "v=abc=");
    const std::string msg_body3 = split(out).second;
    p = parse_auth_request(msg_body3);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, 12u);
    EXPECT_EQ(p->second, "v=abc=");

    EXPECT_EQ(parse_auth_request(""), std::nullopt);
    EXPECT_EQ(parse_auth_request("\0\0\0"s), std::nullopt);
}

TEST(PgMessages, SaslMechanismsRoundTrip) {
    std::string out;
    append_sasl_mechanisms(out, {"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"});
    EXPECT_EQ(split(out).second, "\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0"s);
    const std::string msg_body4 = split(out).second;
    const auto p = parse_auth_request(msg_body4);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, static_cast<uint32_t>(AuthRequest::kSasl));
    EXPECT_EQ(parse_sasl_mechanisms(p->second),
              (std::vector<std::string>{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}));

    out.clear();
    append_sasl_mechanisms(out, {});
    EXPECT_TRUE(parse_sasl_mechanisms(parse_auth_request(split(out).second)->second).empty());

    // Missing final terminator or a truncated name: whatever was complete, never a crash.
    EXPECT_EQ(parse_sasl_mechanisms("A\0B\0"s), (std::vector<std::string>{"A", "B"}));
    EXPECT_EQ(parse_sasl_mechanisms("A\0tru"s), (std::vector<std::string>{"A"}));
    EXPECT_TRUE(parse_sasl_mechanisms("").empty());
    // Names after the terminator are ignored.
    EXPECT_EQ(parse_sasl_mechanisms("A\0\0B\0\0"s), (std::vector<std::string>{"A"}));
}

TEST(PgMessages, SaslInitialRoundTrip) {
    std::string out;
    append_sasl_initial(out, "SCRAM-SHA-256", "n,,n=,r=abc");
    auto [type, body] = split(out);
    EXPECT_EQ(type, 'p');
    EXPECT_EQ(body, "SCRAM-SHA-256\0"s + be32(11) + "n,,n=,r=abc");
    auto p = parse_sasl_initial(body);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, "SCRAM-SHA-256");
    EXPECT_EQ(p->second, "n,,n=,r=abc");

    // Binary data with NULs survives.
    out.clear();
    append_sasl_initial(out, "M", "\0a\0"s);
    const std::string msg_body5 = split(out).second;
    p = parse_sasl_initial(msg_body5);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->second, "\0a\0"s);

    // Zero-length data.
    out.clear();
    append_sasl_initial(out, "M", "");
    const std::string msg_body6 = split(out).second;
    p = parse_sasl_initial(msg_body6);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, "M");
    EXPECT_EQ(p->second, "");

    // Length -1: no initial response.
    const std::string no_data = "SCRAM-SHA-256\0\xff\xff\xff\xff"s;
    p = parse_sasl_initial(no_data);
    ASSERT_TRUE(p.has_value());
    EXPECT_EQ(p->first, "SCRAM-SHA-256");
    EXPECT_TRUE(p->second.empty());
}

TEST(PgMessages, SaslInitialMalformed) {
    EXPECT_EQ(parse_sasl_initial(""), std::nullopt);
    EXPECT_EQ(parse_sasl_initial("SCRAM"), std::nullopt);                               // no terminator
    EXPECT_EQ(parse_sasl_initial("SCRAM\0\0\0"s), std::nullopt);                        // short length
    EXPECT_EQ(parse_sasl_initial("SCRAM\0"s + be32(5) + "abcd"), std::nullopt);         // data too short
    EXPECT_EQ(parse_sasl_initial("SCRAM\0"s + be32(0xfffffffeu) + "x"), std::nullopt);  // huge length
    EXPECT_EQ(parse_sasl_initial("SCRAM\0"s + be32(0x80000000u)), std::nullopt);
}

TEST(PgMessages, PasswordRoundTrip) {
    std::string out;
    append_password(out, "md5abcdef");
    auto [type, body] = split(out);
    EXPECT_EQ(type, 'p');
    EXPECT_EQ(parse_password(body), "md5abcdef");
    out.clear();
    append_password(out, "");
    const std::string msg_body7 = split(out).second;
    EXPECT_EQ(parse_password(msg_body7), "");
    EXPECT_EQ(parse_password(""), std::nullopt);
    EXPECT_EQ(parse_password("pw"), std::nullopt);      // no terminator
    EXPECT_EQ(parse_password("pw\0x"s), std::nullopt);  // trailing bytes
    EXPECT_EQ(parse_password("pw\0\0"s), std::nullopt);
}

TEST(PgMessages, QueryRoundTrip) {
    std::string out;
    append_query(out, "select 'a;b'; select 2");
    auto [type, body] = split(out);
    EXPECT_EQ(type, 'Q');
    EXPECT_EQ(parse_query(body), "select 'a;b'; select 2");
    out.clear();
    append_query(out, "");
    const std::string msg_body8 = split(out).second;
    EXPECT_EQ(parse_query(msg_body8), "");
    EXPECT_EQ(parse_query(""), std::nullopt);
    EXPECT_EQ(parse_query("select 1"), std::nullopt);
}

// ---- quote_literal ----

TEST(PgMessages, QuoteLiteral) {
    EXPECT_EQ(quote_literal(""), "''");
    EXPECT_EQ(quote_literal("abc"), "'abc'");
    EXPECT_EQ(quote_literal("it's"), "'it''s'");
    EXPECT_EQ(quote_literal("''"), "''''''");
    EXPECT_EQ(quote_literal("a\\b"), "E'a\\\\b'");
    EXPECT_EQ(quote_literal("\\"), "E'\\\\'");
    EXPECT_EQ(quote_literal("it's \\n"), "E'it''s \\\\n'");
    EXPECT_EQ(quote_literal("UTF8 é"), "'UTF8 é'");
}

// ---- fuzz ----

// Random bytes into every decoder: nothing may crash or read out of bounds (run under ASan/UBSan). Half of
// the inputs are mutated valid messages so that the decoders get past their first checks.
TEST(PgMessages, FuzzDecoders) {
    std::mt19937 rng(99);
    std::vector<std::string> seeds;
    seeds.push_back(packet(be32(kProtocolVersion3) + "user\0alice\0database\0db\0\0"s));
    seeds.push_back(packet(be32(kCancelRequestCode) + be32(1) + be32(2)));
    seeds.push_back(packet(be32(kSslRequestCode)));
    seeds.push_back("SFATAL\0VFATAL\0C28P01\0Mbad\0Dd\0Hh\0\0"s);
    seeds.push_back("\0\0\0\x0aSCRAM-SHA-256\0\0"s);
    seeds.push_back("SCRAM-SHA-256\0\0\0\0\x03"s + "abc");
    seeds.push_back("TimeZone\0UTC\0"s);

    for (int iter = 0; iter < 20000; ++iter) {
        std::string in;
        if (iter % 2 == 0) {
            in.resize(rng() % 64);
            for (auto& c : in)
                c = static_cast<char>(rng() % 4 == 0 ? 0 : rng());
        } else {
            in = seeds[rng() % seeds.size()];
            const int edits = 1 + static_cast<int>(rng() % 4);
            for (int e = 0; e < edits && !in.empty(); ++e) {
                const size_t at = rng() % in.size();
                switch (rng() % 4) {
                    case 0:
                        in[at] = static_cast<char>(rng());
                        break;
                    case 1:
                        in.erase(at, 1 + rng() % 4);
                        break;
                    case 2:
                        in.insert(at, 1, static_cast<char>(rng() % 2 ? 0 : rng()));
                        break;
                    default:
                        in.resize(at);
                        break;
                }
            }
            // Keep a startup packet's length field consistent half of the time to reach the param loop.
            if (rng() % 2 && in.size() >= 4) in.replace(0, 4, be32(static_cast<uint32_t>(in.size())));
        }
        // Decode from a heap copy of exactly the input size so ASan catches any over-read.
        const std::unique_ptr<char[]> heap(new char[in.size() + 1]);
        std::copy(in.begin(), in.end(), heap.get());
        const std::string_view v(heap.get(), in.size());

        const auto sp = parse_startup_packet(v);
        if (!sp) {
            EXPECT_FALSE(sp.error().sqlstate.empty());
        } else if (sp->kind == StartupKind::kStartup) {
            // Anything accepted re-encodes to the same bytes.
            std::string again;
            append_startup(again, sp->params);
            if (sp->protocol == kProtocolVersion3) {
                EXPECT_EQ(again, in);
            }
        }
        (void)parse_error_fields(v);
        if (const auto a = parse_auth_request(v)) {
            EXPECT_EQ(a->second.size() + 4, v.size());
            (void)parse_sasl_mechanisms(a->second);
        }
        if (const auto s = parse_sasl_initial(v)) {
            EXPECT_LE(s->first.size() + s->second.size() + 5, v.size());
        }
        (void)parse_parameter_status(v);
        (void)parse_backend_key(v);
        (void)parse_password(v);
        (void)parse_query(v);
        (void)parse_sasl_mechanisms(v);
        (void)quote_literal(v);
    }
}

}  // namespace
}  // namespace poolguard::protocol::pg
