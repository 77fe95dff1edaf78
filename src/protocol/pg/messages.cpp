// Owns encoding and decoding of the PostgreSQL v3 messages poolguard creates or must inspect itself.
#include "protocol/pg/messages.h"

#include "protocol/pg/wire.h"

namespace poolguard::protocol::pg {

const std::string* StartupPacket::param(std::string_view name) const {
    for (const auto& [k, v] : params)
        if (k == name) return &v;
    return nullptr;
}

Result<StartupPacket> parse_startup_packet(std::string_view packet) {
    if (packet.size() < 8) return fail("invalid startup packet layout", sqlstate::kProtocolViolation);
    const uint32_t len = read_be32(packet.data());
    if (len != packet.size()) return fail("invalid startup packet length", sqlstate::kProtocolViolation);
    StartupPacket sp;
    sp.protocol = read_be32(packet.data() + 4);
    if (sp.protocol == kSslRequestCode && len == 8) {
        sp.kind = StartupKind::kSslRequest;
        return sp;
    }
    if (sp.protocol == kGssEncRequestCode && len == 8) {
        sp.kind = StartupKind::kGssEncRequest;
        return sp;
    }
    if (sp.protocol == kCancelRequestCode) {
        if (len != 16) return fail("invalid cancel request length", sqlstate::kProtocolViolation);
        sp.kind = StartupKind::kCancel;
        sp.cancel_pid = read_be32(packet.data() + 8);
        sp.cancel_key = read_be32(packet.data() + 12);
        return sp;
    }
    if ((sp.protocol >> 16) != 3)
        return fail("unsupported frontend protocol " + std::to_string(sp.protocol >> 16) + "." +
                        std::to_string(sp.protocol & 0xffff) + ": server supports 3.0",
                    sqlstate::kFeatureNotSupported);
    FieldReader r(packet.substr(8));
    while (true) {
        auto key = r.cstr();
        if (!key)
            return fail("invalid startup packet layout: expected terminator as last byte",
                        sqlstate::kProtocolViolation);
        if (key->empty()) break;
        auto value = r.cstr();
        if (!value) return fail("invalid startup packet layout: missing value", sqlstate::kProtocolViolation);
        sp.params.emplace_back(std::string(*key), std::string(*value));
    }
    if (!r.at_end())
        return fail("invalid startup packet layout: expected terminator as last byte",
                    sqlstate::kProtocolViolation);
    return sp;
}

void append_error(std::string& out, const ErrorFields& e, char type) {
    MessageBuilder m(out, type);
    m.byte('S').cstr(e.severity);
    m.byte('V').cstr(e.severity);
    m.byte('C').cstr(e.sqlstate.empty() ? "XX000" : e.sqlstate);
    m.byte('M').cstr(e.message);
    if (!e.detail.empty()) m.byte('D').cstr(e.detail);
    if (!e.hint.empty()) m.byte('H').cstr(e.hint);
    m.byte('\0');
    m.finish();
}

void append_notice(std::string& out, std::string_view message, std::string_view state) {
    append_error(out, ErrorFields{"NOTICE", std::string(state), std::string(message), {}, {}}, 'N');
}

void append_auth_request(std::string& out, AuthRequest req, std::string_view data) {
    MessageBuilder m(out, 'R');
    m.i32(static_cast<uint32_t>(req)).bytes(data);
    m.finish();
}

void append_sasl_mechanisms(std::string& out, const std::vector<std::string>& mechanisms) {
    MessageBuilder m(out, 'R');
    m.i32(static_cast<uint32_t>(AuthRequest::kSasl));
    for (const auto& mech : mechanisms)
        m.cstr(mech);
    m.byte('\0');
    m.finish();
}

void append_parameter_status(std::string& out, std::string_view name, std::string_view value) {
    MessageBuilder m(out, 'S');
    m.cstr(name).cstr(value);
    m.finish();
}

void append_backend_key(std::string& out, uint32_t pid, uint32_t key) {
    MessageBuilder m(out, 'K');
    m.i32(pid).i32(key);
    m.finish();
}

void append_ready_for_query(std::string& out, char status) {
    MessageBuilder m(out, 'Z');
    m.byte(status);
    m.finish();
}

void append_command_complete(std::string& out, std::string_view tag) {
    MessageBuilder m(out, 'C');
    m.cstr(tag);
    m.finish();
}

void append_row_description(std::string& out, const std::vector<std::string>& columns) {
    MessageBuilder m(out, 'T');
    m.i16(static_cast<uint16_t>(columns.size()));
    for (const auto& c : columns) {
        m.cstr(c).i32(0).i16(0).i32(25 /* text */).i16(0xffff).i32(0xffffffff).i16(0);
    }
    m.finish();
}

void append_data_row(std::string& out, const std::vector<std::optional<std::string>>& values) {
    MessageBuilder m(out, 'D');
    m.i16(static_cast<uint16_t>(values.size()));
    for (const auto& v : values) {
        if (!v) {
            m.i32(0xffffffff);
        } else {
            m.i32(static_cast<uint32_t>(v->size())).bytes(*v);
        }
    }
    m.finish();
}

void append_empty_query(std::string& out) {
    MessageBuilder m(out, 'I');
    m.finish();
}

void append_startup(std::string& out, const std::vector<std::pair<std::string, std::string>>& params) {
    MessageBuilder m(out, 0);
    m.i32(kProtocolVersion3);
    for (const auto& [k, v] : params)
        m.cstr(k).cstr(v);
    m.byte('\0');
    m.finish();
}

void append_cancel_request(std::string& out, uint32_t pid, uint32_t key) {
    MessageBuilder m(out, 0);
    m.i32(kCancelRequestCode).i32(pid).i32(key);
    m.finish();
}

void append_password(std::string& out, std::string_view password) {
    MessageBuilder m(out, 'p');
    m.cstr(password);
    m.finish();
}

void append_sasl_initial(std::string& out, std::string_view mechanism, std::string_view data) {
    MessageBuilder m(out, 'p');
    m.cstr(mechanism).i32(static_cast<uint32_t>(data.size())).bytes(data);
    m.finish();
}

void append_sasl_response(std::string& out, std::string_view data) {
    MessageBuilder m(out, 'p');
    m.bytes(data);
    m.finish();
}

void append_query(std::string& out, std::string_view sql) {
    MessageBuilder m(out, 'Q');
    m.cstr(sql);
    m.finish();
}

void append_sync(std::string& out) {
    MessageBuilder m(out, 'S');
    m.finish();
}

void append_terminate(std::string& out) {
    MessageBuilder m(out, 'X');
    m.finish();
}

ErrorFields parse_error_fields(std::string_view body) {
    ErrorFields e;
    e.severity.clear();
    FieldReader r(body);
    while (true) {
        auto code = r.byte();
        if (!code || *code == '\0') break;
        auto value = r.cstr();
        if (!value) break;
        switch (*code) {
            case 'S':
                if (e.severity.empty()) e.severity = *value;
                break;
            case 'V':
                e.severity = *value;
                break;
            case 'C':
                e.sqlstate = *value;
                break;
            case 'M':
                e.message = *value;
                break;
            case 'D':
                e.detail = *value;
                break;
            case 'H':
                e.hint = *value;
                break;
            default:
                break;
        }
    }
    return e;
}

std::optional<std::pair<std::string, std::string>> parse_parameter_status(std::string_view body) {
    FieldReader r(body);
    auto name = r.cstr();
    auto value = r.cstr();
    if (!name || !value) return std::nullopt;
    return std::pair{std::string(*name), std::string(*value)};
}

std::optional<std::pair<uint32_t, uint32_t>> parse_backend_key(std::string_view body) {
    FieldReader r(body);
    auto pid = r.i32();
    auto key = r.i32();
    if (!pid || !key) return std::nullopt;
    return std::pair{*pid, *key};
}

std::optional<std::pair<uint32_t, std::string_view>> parse_auth_request(std::string_view body) {
    FieldReader r(body);
    auto code = r.i32();
    if (!code) return std::nullopt;
    return std::pair{*code, r.rest()};
}

std::vector<std::string> parse_sasl_mechanisms(std::string_view rest) {
    std::vector<std::string> out;
    FieldReader r(rest);
    while (auto m = r.cstr()) {
        if (m->empty()) break;
        out.emplace_back(*m);
    }
    return out;
}

std::optional<std::string_view> parse_password(std::string_view body) {
    FieldReader r(body);
    auto s = r.cstr();
    if (!s || !r.at_end()) return std::nullopt;
    return s;
}

std::optional<std::pair<std::string_view, std::string_view>> parse_sasl_initial(std::string_view body) {
    FieldReader r(body);
    auto mech = r.cstr();
    auto len = r.i32();
    if (!mech || !len) return std::nullopt;
    if (*len == 0xffffffff) return std::pair{*mech, std::string_view{}};
    auto data = r.bytes(*len);
    if (!data) return std::nullopt;
    return std::pair{*mech, *data};
}

std::optional<std::string_view> parse_query(std::string_view body) {
    FieldReader r(body);
    return r.cstr();
}

std::string quote_literal(std::string_view value) {
    std::string out;
    out.reserve(value.size() + 2);
    bool has_backslash = value.find('\\') != std::string_view::npos;
    if (has_backslash) out.push_back('E');
    out.push_back('\'');
    for (char c : value) {
        if (c == '\'') out.push_back('\'');
        if (c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

}  // namespace poolguard::protocol::pg
