// Tests the syslog sink (common/syslog_sink): PgBouncer's facility names, severities, the datagram format,
// and that a line reaches a Unix datagram socket standing in for /dev/log.
#include "common/syslog_sink.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

namespace poolguard {
namespace {

TEST(SyslogFacility, PgBouncersNames) {
    EXPECT_EQ(syslog_facility_from_name("auth"), LOG_AUTH);
    EXPECT_EQ(syslog_facility_from_name("authpriv"), LOG_AUTHPRIV);
    EXPECT_EQ(syslog_facility_from_name("daemon"), LOG_DAEMON);
    EXPECT_EQ(syslog_facility_from_name("user"), LOG_USER);
    EXPECT_EQ(syslog_facility_from_name("local0"), LOG_LOCAL0);
    EXPECT_EQ(syslog_facility_from_name("local7"), LOG_LOCAL7);
    EXPECT_EQ(syslog_facility_from_name("local8"), std::nullopt);
    EXPECT_EQ(syslog_facility_from_name("kern"), std::nullopt);
    EXPECT_EQ(syslog_facility_from_name(""), std::nullopt);
}

TEST(SyslogFacility, Severities) {
    EXPECT_EQ(syslog_severity(spdlog::level::err), LOG_ERR);
    EXPECT_EQ(syslog_severity(spdlog::level::warn), LOG_WARNING);
    EXPECT_EQ(syslog_severity(spdlog::level::info), LOG_INFO);
    EXPECT_EQ(syslog_severity(spdlog::level::debug), LOG_DEBUG);
    EXPECT_EQ(syslog_severity(spdlog::level::critical), LOG_CRIT);
}

TEST(SyslogDatagram, Rfc3164WithPid) {
    // local3 (19 << 3 = 152) + warning (4) = 156.
    const std::string d = format_syslog_datagram(LOG_LOCAL3, LOG_WARNING, "pgb", 42, "hello", 0);
    EXPECT_TRUE(d.starts_with("<156>")) << d;
    EXPECT_TRUE(d.ends_with(" pgb[42]: hello")) << d;
    EXPECT_EQ(d.size(), std::string("<156>Jan  1 00:00:00 pgb[42]: hello").size()) << d;
}

TEST(SyslogSink, SendsOneDatagramPerLine) {
    const auto path = std::filesystem::temp_directory_path() / ("pg-syslog-" + std::to_string(::getpid()));
    std::filesystem::remove(path);
    const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    auto sink = std::make_shared<SyslogSink>("myident", LOG_LOCAL1, path.string());
    sink->set_pattern("%v");
    spdlog::logger logger("syslog-test", sink);
    logger.warn("line {}", 1);
    char buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    ASSERT_GT(n, 0);
    const std::string got(buf, static_cast<size_t>(n));
    EXPECT_TRUE(got.starts_with("<" + std::to_string(LOG_LOCAL1 | LOG_WARNING) + ">")) << got;
    EXPECT_NE(got.find(" myident[" + std::to_string(::getpid()) + "]: line 1"), std::string::npos) << got;
    EXPECT_EQ(got.find('\n'), std::string::npos) << got;
    ::close(fd);
    std::filesystem::remove(path);
    logger.info("receiver gone: dropped, no error, no block");
}

}  // namespace
}  // namespace poolguard
