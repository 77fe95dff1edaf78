// Owns splitting a PostgreSQL v3 byte stream into message segments without I/O (sans-I/O framing).
#pragma once

#include <bitset>
#include <cstdint>
#include <string_view>

namespace poolguard::protocol::pg {

// How the scanner hands a stream back to its caller.
enum class SegmentKind {
    kNeedMore,  // nothing complete yet: read more bytes (nothing consumed)
    kWhole,     // one complete message the caller asked to inspect (bytes = header + body)
    kStart,     // the start of a streamed message: header plus whatever of its body is already here
    kRest,      // more body bytes of the streamed message begun by the last kStart
    kError,     // the stream is malformed (bad length or oversized); stop reading this peer
};

struct Segment {
    SegmentKind kind = SegmentKind::kNeedMore;
    char type = 0;           // message type byte (kWhole, kStart, kRest)
    uint32_t body_len = 0;   // declared body length, without the 4 length bytes (kWhole, kStart, kRest)
    std::string_view bytes;  // the bytes this segment covers; consume exactly bytes.size()
    bool completes = false;  // true when this segment ends its message
    std::string_view body() const {
        return kind == SegmentKind::kWhole ? bytes.substr(5) : std::string_view{};
    }
};

// Streams messages so that large ones (a 1 GB DataRow or CopyData) pass through in pieces while small
// ones the proxy must look at arrive whole. Types marked `whole` are returned as kWhole once their last byte
// is in the buffer; others are returned as kStart + kRest pieces as bytes arrive.
class FrameScanner {
  public:
    FrameScanner(uint32_t max_message_len, uint32_t max_whole_len)
        : max_len_(max_message_len), max_whole_(max_whole_len) {}

    void set_whole(char type, bool whole = true) { whole_.set(static_cast<unsigned char>(type), whole); }
    bool is_whole(char type) const { return whole_.test(static_cast<unsigned char>(type)); }

    // Returns the next segment at the start of `data`. The caller drops segment.bytes.size() bytes from the
    // front of its buffer and calls again, until kNeedMore (or kError).
    Segment next(std::string_view data);

    // Bytes still expected for the message being streamed (0 when between messages).
    uint64_t remaining() const { return remaining_; }
    // True when the stream is between two messages (no partial message consumed).
    bool at_boundary() const { return remaining_ == 0; }
    // The error text after kError.
    const char* error() const { return error_; }
    // Minimum buffer capacity the caller needs to make progress on `data` (for a kNeedMore on a whole
    // message).
    size_t needed(std::string_view data) const;

    void reset() {
        remaining_ = 0;
        type_ = 0;
        error_ = nullptr;
    }

  private:
    uint32_t max_len_;
    uint32_t max_whole_;
    std::bitset<256> whole_;
    uint64_t remaining_ = 0;  // body bytes of the streamed message not yet handed out
    char type_ = 0;
    uint32_t body_len_ = 0;
    const char* error_ = nullptr;
};

// Before a server is bound to a client (issue 15): is the first message in `data` complete? True for a whole
// message, for a header declaring `stream_from` bytes or more (streamed through as it arrives) and for a
// malformed length (the scanner refuses it). False with `need` = bytes the message takes in all.
struct FirstMessage {
    bool ready = false;
    size_t need = 0;
};
FirstMessage first_message_ready(std::string_view data, size_t stream_from);

}  // namespace poolguard::protocol::pg
