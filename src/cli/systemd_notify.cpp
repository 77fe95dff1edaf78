// Owns the service manager notifications (sd_notify) of `poolguard serve`.
#include "cli/systemd_notify.h"

#include <spdlog/spdlog.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace poolguard::systemd_notify {

namespace {
void send(const std::string& message) {
    if (!wanted()) return;
    // One datagram; a failure (the manager went away) is logged and otherwise ignored, as PgBouncer does.
    if (int r = ::sd_notify(0, message.c_str()); r < 0)
        spdlog::warn("sd_notify failed: {}", std::strerror(-r));
}

// STATUS= is one line: a newline would start another assignment.
std::string status_line(std::string_view status) {
    std::string s(status);
    for (char& c : s)
        if (c == '\n' || c == '\r') c = ' ';
    return "STATUS=" + s;
}
}  // namespace

bool wanted() {
    const char* socket = std::getenv("NOTIFY_SOCKET");
    return socket != nullptr && *socket != '\0';
}

void ready(std::string_view status) {
    send("READY=1\n" + status_line(status));
}

void reloading() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    const unsigned long long usec = static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL +
                                    static_cast<unsigned long long>(ts.tv_nsec) / 1000ULL;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\nSTATUS=reloading the configuration");
}

void stopping(std::string_view status) {
    send("STOPPING=1\n" + status_line(status));
}

void status(std::string_view status) {
    send(status_line(status));
}

void stats(std::string_view log_line) {
    if (!wanted()) return;
    std::string line(log_line);
    for (size_t at = 0; (at = line.find(" us", at)) != std::string::npos; at += 3)
        if (at + 3 == line.size() || line[at + 3] == ',') line.replace(at, 3, " \u03bcs");
    send(status_line(line));
}

}  // namespace poolguard::systemd_notify
