// Owns NegotiateProtocolVersion for startup packets (see startup_negotiation.h).
#include "protocol/pg/startup_negotiation.h"

#include "protocol/pg/wire.h"

namespace poolguard::protocol::pg {

std::string negotiate_protocol(StartupPacket& sp) {
    std::vector<std::string> unknown;
    std::erase_if(sp.params, [&](const auto& kv) {
        if (kv.first.rfind("_pq_.", 0) != 0) return false;
        unknown.push_back(kv.first);
        return true;
    });
    const uint32_t minor = sp.protocol & 0xffff;
    if (minor <= kNewestMinorVersion && unknown.empty()) return {};
    std::string out;
    MessageBuilder m(out, 'v');
    m.i32(kNewestMinorVersion).i32(static_cast<uint32_t>(unknown.size()));
    for (const auto& name : unknown)
        m.cstr(name);
    m.finish();
    return out;
}

}  // namespace poolguard::protocol::pg
