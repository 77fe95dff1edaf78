// Owns process-wide logging setup (spdlog to stderr or a logfile) and the logger accessor.
#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

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
    logger->set_level(verbose >= 2   ? spdlog::level::trace
                      : verbose == 1 ? spdlog::level::debug
                                     : spdlog::level::info);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

}  // namespace poolguard
