// Owns the fuzz target of the streaming framer (FrameScanner) and first_message_ready: arbitrary bytes in
// arbitrary read sizes; every segment must stay inside the buffer and the stream must make progress.
#include <cstdlib>
#include <string>

#include "fuzz_input.h"
#include "protocol/pg/frame_scanner.h"

using namespace poolguard::protocol::pg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::Input in(data, size);
    const uint8_t flags = in.byte();
    const uint32_t max_len = 16 + in.byte() * 97;
    FrameScanner scanner(max_len, max_len / 2 + 5);
    if (flags & 1) scanner.set_whole('P');
    if (flags & 2) scanner.set_whole('D');
    if (flags & 4) scanner.set_whole('E');
    const size_t chunk = 1 + (flags >> 3);
    const std::string stream(in.rest());
    (void)first_message_ready(stream, 1 + (flags % 64));
    std::string buf;
    size_t fed = 0;
    while (fed < stream.size()) {
        buf.append(stream, fed, chunk);
        fed += chunk;
        while (true) {
            const auto seg = scanner.next(buf);
            if (seg.kind == SegmentKind::kNeedMore) {
                (void)scanner.needed(buf);
                break;
            }
            if (seg.kind == SegmentKind::kError) return 0;
            if (seg.bytes.data() < buf.data() ||
                seg.bytes.data() + seg.bytes.size() > buf.data() + buf.size())
                std::abort();
            if (seg.bytes.empty()) std::abort();  // no progress: the caller would spin
            (void)seg.body();
            buf.erase(0, seg.bytes.size());
        }
    }
    return 0;
}
