// Owns the small helper the fuzz targets share: carving one fuzz input into typed pieces.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace fuzz {

class Input {
  public:
    Input(const uint8_t* data, size_t size) : s_(reinterpret_cast<const char*>(data), size) {}
    bool empty() const { return s_.empty(); }
    uint8_t byte() {
        if (s_.empty()) return 0;
        const auto b = static_cast<uint8_t>(s_[0]);
        s_.remove_prefix(1);
        return b;
    }
    // The next piece: a length byte, then up to that many bytes (the rest when `max` is 0).
    std::string_view piece(size_t max = 0) {
        size_t n = max == 0 ? s_.size() : std::min<size_t>(byte() % (max + 1), s_.size());
        n = std::min(n, s_.size());
        auto out = s_.substr(0, n);
        s_.remove_prefix(n);
        return out;
    }
    // Splits the rest at '\xff' separators: piece i of a multi-message input.
    std::string_view until_sep() {
        const size_t at = s_.find('\xff');
        auto out = s_.substr(0, at);
        s_.remove_prefix(at == std::string_view::npos ? s_.size() : at + 1);
        return out;
    }
    std::string_view rest() const { return s_; }

  private:
    std::string_view s_;
};

}  // namespace fuzz
