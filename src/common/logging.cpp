// Owns process-wide logging setup (spdlog to stderr or a logfile, and syslog) and the logger accessor.
#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "common/syslog_sink.h"

namespace poolguard {

namespace {
bool g_stderr_allowed = true;

std::shared_ptr<spdlog::logger> stderr_or_null(const std::string& name) {
    if (auto existing = spdlog::get(name)) return existing;
    if (g_stderr_allowed) return spdlog::stderr_logger_mt(name);
    auto logger = std::make_shared<spdlog::logger>(name, std::make_shared<spdlog::sinks::null_sink_mt>());
    spdlog::register_logger(logger);
    return logger;
}
}  // namespace

void set_stderr_logging(bool allowed) {
    g_stderr_allowed = allowed;
}

void setup_logging(const std::string& logfile, int verbose) {
    setup_logging(logfile, verbose, SyslogSettings{});
}

void setup_logging(const std::string& logfile, int verbose, const SyslogSettings& syslog) {
    std::shared_ptr<spdlog::logger> logger;
    if (!logfile.empty()) {
        try {
            logger = spdlog::basic_logger_mt("poolguard-file-" + logfile, logfile, false);
        } catch (const spdlog::spdlog_ex& e) {
            logger = stderr_or_null(g_stderr_allowed ? "poolguard-stderr-fallback" : "poolguard-null");
            logger->error("cannot open logfile {}: {}; logging to stderr", logfile, e.what());
        }
    } else {
        logger = stderr_or_null(g_stderr_allowed ? "poolguard-stderr" : "poolguard-null");
    }
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %z [%P] %^%l%$ %v");
    std::string facility_warning;
    if (syslog.enabled) {
        // One sink per (ident, facility), kept across reloads so its socket is not reopened for nothing.
        static std::shared_ptr<SyslogSink> sink;
        static std::string sink_key;
        auto facility = syslog_facility_from_name(syslog.facility);
        if (!facility) facility_warning = syslog.facility;
        const int fac = facility.value_or(syslog_facility_from_name("daemon").value_or(0));
        const std::string key = syslog.ident + '\n' + std::to_string(fac);
        if (!sink || sink_key != key) {
            sink = std::make_shared<SyslogSink>(syslog.ident, fac);
            sink_key = key;
        }
        auto sinks = logger->sinks();
        sinks.push_back(sink);
        logger = std::make_shared<spdlog::logger>("poolguard-syslog", sinks.begin(), sinks.end());
        logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %z [%P] %^%l%$ %v");
        sink->set_pattern("%v");  // as PgBouncer: the message alone (syslog adds time, ident, pid)
    }
    logger->set_level(verbose >= 2   ? spdlog::level::trace
                      : verbose == 1 ? spdlog::level::debug
                                     : spdlog::level::info);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
    if (!facility_warning.empty())
        spdlog::warn("syslog_facility {} is not one of auth, authpriv, daemon, user, local0-7: using daemon",
                     facility_warning);
}

}  // namespace poolguard
