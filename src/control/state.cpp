// Owns the copy of the data plane's counters into plain values (see state.h).
#include "control/state.h"

namespace poolguard::control {

CounterValues CounterValues::read(const DataPlaneCounters& c) {
    constexpr auto r = std::memory_order_relaxed;
    CounterValues v;
    v.refused_max_client_conn = c.refused_max_client_conn.load(r);
    v.refused_query_wait_timeout = c.refused_query_wait_timeout.load(r);
    v.refused_server_error = c.refused_server_error.load(r);
    v.client_login_failures = c.client_login_failures.load(r);
    v.server_too_many_clients = c.server_too_many_clients.load(r);
    v.server_login_failures = c.server_login_failures.load(r);
    v.refused_breaker = c.refused_breaker.load(r);
    v.breaker_opens = c.breaker_opens.load(r);
    v.breaker_closes = c.breaker_closes.load(r);
    for (size_t i = 0; i < v.wait_bucket.size(); ++i)
        v.wait_bucket[i] = c.wait_bucket[i].load(r);
    for (size_t i = 0; i < v.client_rejections.size(); ++i)
        v.client_rejections[i] = c.client_rejections[i].load(r);
    v.wait_count = c.wait_count.load(r);
    v.wait_sum_us = c.wait_sum_us.load(r);
    v.clients_parked = c.clients_parked.load(r);
    return v;
}

}  // namespace poolguard::control
