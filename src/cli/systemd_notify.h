// Owns the service manager notifications (sd_notify) of `poolguard serve`: READY, RELOADING with
// MONOTONIC_USEC, STOPPING and STATUS, as a Type=notify / Type=notify-reload systemd unit expects them.
#pragma once

#include <string_view>

namespace poolguard::systemd_notify {

// True when NOTIFY_SOCKET is set (a service manager waits for our notifications). Every call below is a
// no-op without it.
bool wanted();
// READY=1: the listeners are open and poolguard serves; `status` becomes STATUS= (systemctl status).
void ready(std::string_view status);
// RELOADING=1 with MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>, as Type=notify-reload (systemd >= 253) requires;
// follow with ready() once the reload is applied or has failed.
void reloading();
// STOPPING=1: a shutdown has begun.
void stopping(std::string_view status);
// STATUS= alone.
void status(std::string_view status);
// STATUS= with the log_stats line, its durations in "μs" as PgBouncer 1.25.2 writes them there ("us" in
// the log).
void stats(std::string_view log_line);

}  // namespace poolguard::systemd_notify
