// Owns the fuzz target of the startup packet parser and protocol negotiation (untrusted, before login).
#include <cstdlib>
#include <string>

#include "protocol/pg/messages.h"
#include "protocol/pg/startup_negotiation.h"
#include "protocol/pg/wire.h"

using namespace poolguard::protocol::pg;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string packet(reinterpret_cast<const char*>(data), size);
    // As the session reads it: a length prefix that matches the packet (the other case is refused before).
    if (packet.size() >= 4) {
        const uint32_t n = static_cast<uint32_t>(packet.size());
        packet[0] = char(n >> 24), packet[1] = char(n >> 16), packet[2] = char(n >> 8), packet[3] = char(n);
    }
    (void)parse_startup_packet(std::string(reinterpret_cast<const char*>(data), size));
    auto sp = parse_startup_packet(packet);
    if (!sp) return 0;
    for (const auto& [k, v] : sp->params)
        (void)sp->param(k);
    const std::string v = negotiate_protocol(*sp);
    if (!v.empty() && (v[0] != 'v' || read_be32(v.data() + 1) + 1 != v.size())) std::abort();
    return 0;
}
