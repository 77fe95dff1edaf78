// Owns the PostgreSQL v3 wire primitives: big-endian integers, message building and field reading.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace poolguard::protocol::pg {

// Protocol codes found in place of the version in a startup-phase packet.
inline constexpr uint32_t kProtocolVersion3 = 196608;  // 3.0
inline constexpr uint32_t kCancelRequestCode = 80877102;
inline constexpr uint32_t kSslRequestCode = 80877103;
inline constexpr uint32_t kGssEncRequestCode = 80877104;

inline uint32_t read_be32(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}
inline uint16_t read_be16(const char* p) {
    const auto* u = reinterpret_cast<const unsigned char*>(p);
    return static_cast<uint16_t>((u[0] << 8) | u[1]);
}
inline void append_be32(std::string& out, uint32_t v) {
    char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                 static_cast<char>(v)};
    out.append(b, 4);
}
inline void append_be16(std::string& out, uint16_t v) {
    char b[2] = {static_cast<char>(v >> 8), static_cast<char>(v)};
    out.append(b, 2);
}

// Appends one typed message to `out`: type byte, then length, then what the caller appends, then the
// length is patched by finish(). Usage: MessageBuilder m(out, 'Q'); m.cstr("select 1"); m.finish();
class MessageBuilder {
  public:
    MessageBuilder(std::string& out, char type) : out_(out) {
        if (type != 0) out_.push_back(type);
        start_ = out_.size();
        append_be32(out_, 0);
    }
    MessageBuilder& byte(char c) {
        out_.push_back(c);
        return *this;
    }
    MessageBuilder& i16(uint16_t v) {
        append_be16(out_, v);
        return *this;
    }
    MessageBuilder& i32(uint32_t v) {
        append_be32(out_, v);
        return *this;
    }
    MessageBuilder& cstr(std::string_view s) {
        out_.append(s);
        out_.push_back('\0');
        return *this;
    }
    MessageBuilder& bytes(std::string_view s) {
        out_.append(s);
        return *this;
    }
    void finish() {
        const uint32_t len = static_cast<uint32_t>(out_.size() - start_);
        out_[start_] = static_cast<char>(len >> 24);
        out_[start_ + 1] = static_cast<char>(len >> 16);
        out_[start_ + 2] = static_cast<char>(len >> 8);
        out_[start_ + 3] = static_cast<char>(len);
    }

  private:
    std::string& out_;
    size_t start_;
};

// Reads fields out of one message body; every read is bounds-checked and turns the reader "bad" instead of
// reading past the end, so a malformed message from a peer can never crash us.
class FieldReader {
  public:
    explicit FieldReader(std::string_view body) : body_(body) {}
    std::optional<std::string_view> cstr() {
        const auto end = body_.find('\0', pos_);
        if (end == std::string_view::npos) return fail<std::string_view>();
        auto s = body_.substr(pos_, end - pos_);
        pos_ = end + 1;
        return s;
    }
    std::optional<uint32_t> i32() {
        if (body_.size() - pos_ < 4) return fail<uint32_t>();
        auto v = read_be32(body_.data() + pos_);
        pos_ += 4;
        return v;
    }
    std::optional<uint16_t> i16() {
        if (body_.size() - pos_ < 2) return fail<uint16_t>();
        auto v = read_be16(body_.data() + pos_);
        pos_ += 2;
        return v;
    }
    std::optional<char> byte() {
        if (pos_ >= body_.size()) return fail<char>();
        return body_[pos_++];
    }
    std::optional<std::string_view> bytes(size_t n) {
        if (body_.size() - pos_ < n) return fail<std::string_view>();
        auto s = body_.substr(pos_, n);
        pos_ += n;
        return s;
    }
    std::string_view rest() const { return body_.substr(pos_); }
    bool at_end() const { return pos_ == body_.size(); }
    bool bad() const { return bad_; }

  private:
    template <typename T>
    std::optional<T> fail() {
        bad_ = true;
        return std::nullopt;
    }
    std::string_view body_;
    size_t pos_ = 0;
    bool bad_ = false;
};

}  // namespace poolguard::protocol::pg
