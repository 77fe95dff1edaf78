// Owns splitting a PostgreSQL v3 byte stream into message segments without I/O (sans-I/O framing).
#include "protocol/pg/frame_scanner.h"

#include <algorithm>

#include "protocol/pg/wire.h"

namespace poolguard::protocol::pg {

Segment FrameScanner::next(std::string_view data) {
    Segment seg;
    if (error_ != nullptr) {
        seg.kind = SegmentKind::kError;
        return seg;
    }
    if (remaining_ > 0) {
        if (data.empty()) return seg;
        const size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, data.size()));
        remaining_ -= n;
        seg.kind = SegmentKind::kRest;
        seg.type = type_;
        seg.body_len = body_len_;
        seg.bytes = data.substr(0, n);
        seg.completes = remaining_ == 0;
        return seg;
    }
    if (data.size() < 5) return seg;
    const char type = data[0];
    const uint32_t len = read_be32(data.data() + 1);
    if (len < 4) {
        error_ = "invalid message length";
        seg.kind = SegmentKind::kError;
        return seg;
    }
    if (len > max_len_) {
        error_ = "message too large";
        seg.kind = SegmentKind::kError;
        return seg;
    }
    const uint32_t body_len = len - 4;
    if (is_whole(type)) {
        if (len > max_whole_) {
            error_ = "message too large";
            seg.kind = SegmentKind::kError;
            return seg;
        }
        if (data.size() < size_t{1} + len) return seg;
        seg.kind = SegmentKind::kWhole;
        seg.type = type;
        seg.body_len = body_len;
        seg.bytes = data.substr(0, size_t{1} + len);
        seg.completes = true;
        return seg;
    }
    const size_t avail = std::min<size_t>(data.size() - 5, body_len);
    type_ = type;
    body_len_ = body_len;
    remaining_ = body_len - avail;
    seg.kind = SegmentKind::kStart;
    seg.type = type;
    seg.body_len = body_len;
    seg.bytes = data.substr(0, 5 + avail);
    seg.completes = remaining_ == 0;
    return seg;
}

size_t FrameScanner::needed(std::string_view data) const {
    if (remaining_ > 0 || data.size() < 5) return 5;
    const uint32_t len = read_be32(data.data() + 1);
    if (is_whole(data[0])) return size_t{1} + len;
    return 5;
}

FirstMessage first_message_ready(std::string_view data, size_t stream_from) {
    if (data.size() < 5) return {false, 5};
    const uint32_t len = (uint32_t(uint8_t(data[1])) << 24) | (uint32_t(uint8_t(data[2])) << 16) |
                         (uint32_t(uint8_t(data[3])) << 8) | uint32_t(uint8_t(data[4]));
    if (len < 4) return {true, 0};
    const size_t total = size_t{1} + len;
    if (total >= stream_from || data.size() >= total) return {true, 0};
    return {false, total};
}

}  // namespace poolguard::protocol::pg
