// Owns logging to syslog (PgBouncer's syslog, syslog_ident, syslog_facility): the facility names and a
// spdlog sink that sends RFC 3164 datagrams to the local syslog socket without ever blocking.
#pragma once

#include <spdlog/sinks/base_sink.h>

#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace poolguard {

// PgBouncer's facility names (auth, authpriv, daemon, user, local0..local7) to LOG_* values; nullopt for
// another name.
std::optional<int> syslog_facility_from_name(std::string_view name);

// syslog severity (LOG_ERR, LOG_INFO, ...) for a spdlog level.
int syslog_severity(spdlog::level::level_enum level);

// "<PRI>Mmm dd hh:mm:ss IDENT[PID]: MESSAGE" (RFC 3164, what syslog(3) with LOG_PID sends).
std::string format_syslog_datagram(int facility, int severity, std::string_view ident, long pid,
                                   std::string_view message, std::time_t now);

// One line per datagram to `socket_path` (/dev/log). Sending never blocks: a full or missing receiver
// drops the line (the data plane must not wait for a syslog daemon); the socket is reconnected when the
// daemon restarts.
class SyslogSink final : public spdlog::sinks::base_sink<std::mutex> {
  public:
    SyslogSink(std::string ident, int facility, std::string socket_path = default_socket_path());
    ~SyslogSink() override;
    // /dev/log, or $POOLGUARD_SYSLOG_SOCKET when set (tests point it at a socket of their own).
    static std::string default_socket_path();

  protected:
    void sink_it_(const spdlog::details::log_msg& msg) override;
    void flush_() override {}

  private:
    bool connect_socket();

    std::string ident_;
    int facility_;
    std::string socket_path_;
    int fd_ = -1;
};

}  // namespace poolguard
