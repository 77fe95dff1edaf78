// Owns logging to syslog (PgBouncer's syslog, syslog_ident, syslog_facility): see syslog_sink.h.
#include "common/syslog_sink.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace poolguard {

std::optional<int> syslog_facility_from_name(std::string_view name) {
    struct Entry {
        std::string_view name;
        int facility;
    };
    static constexpr Entry kFacilities[] = {
        {"auth", LOG_AUTH},     {"authpriv", LOG_AUTHPRIV}, {"daemon", LOG_DAEMON}, {"user", LOG_USER},
        {"local0", LOG_LOCAL0}, {"local1", LOG_LOCAL1},     {"local2", LOG_LOCAL2}, {"local3", LOG_LOCAL3},
        {"local4", LOG_LOCAL4}, {"local5", LOG_LOCAL5},     {"local6", LOG_LOCAL6}, {"local7", LOG_LOCAL7},
    };
    for (const auto& e : kFacilities)
        if (e.name == name) return e.facility;
    return std::nullopt;
}

int syslog_severity(spdlog::level::level_enum level) {
    switch (level) {
        case spdlog::level::critical:
            return LOG_CRIT;
        case spdlog::level::err:
            return LOG_ERR;
        case spdlog::level::warn:
            return LOG_WARNING;
        case spdlog::level::info:
            return LOG_INFO;
        default:
            return LOG_DEBUG;
    }
}

std::string format_syslog_datagram(int facility, int severity, std::string_view ident, long pid,
                                   std::string_view message, std::time_t now) {
    std::tm tm{};
    ::localtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    std::string out = "<" + std::to_string(facility | severity) + ">" + stamp + " ";
    out.append(ident);
    out += "[" + std::to_string(pid) + "]: ";
    out.append(message);
    return out;
}

SyslogSink::SyslogSink(std::string ident, int facility, std::string socket_path)
    : ident_(std::move(ident)), facility_(facility), socket_path_(std::move(socket_path)) {
    connect_socket();
}

SyslogSink::~SyslogSink() {
    if (fd_ >= 0) ::close(fd_);
}

std::string SyslogSink::default_socket_path() {
    const char* env = std::getenv("POOLGUARD_SYSLOG_SOCKET");
    return env && *env ? env : "/dev/log";
}

bool SyslogSink::connect_socket() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd_ < 0) return false;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (socket_path_.size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
        ::close(fd_);
        fd_ = -1;
        return false;
    }
    return true;
}

void SyslogSink::sink_it_(const spdlog::details::log_msg& msg) {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    std::string_view text(formatted.data(), formatted.size());
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
        text.remove_suffix(1);
    const std::string datagram =
        format_syslog_datagram(facility_, syslog_severity(msg.level), ident_, static_cast<long>(::getpid()),
                               text, std::chrono::system_clock::to_time_t(msg.time));
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (fd_ < 0 && !connect_socket()) return;
        if (::send(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return;
        // The daemon restarted (its socket is new): reconnect once; a full buffer drops the line.
        if (errno != ECONNREFUSED && errno != ENOTCONN && errno != ENOENT) return;
        ::close(fd_);
        fd_ = -1;
    }
}

}  // namespace poolguard
