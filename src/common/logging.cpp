// Owns process-wide logging setup (spdlog to stderr or a logfile) and the logger accessor.
#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace poolguard {

void setup_logging(const std::string& logfile, int verbose) {
    std::shared_ptr<spdlog::logger> logger;
    if (!logfile.empty()) {
        try {
            logger = spdlog::basic_logger_mt("poolguard-file-" + logfile, logfile, false);
        } catch (const spdlog::spdlog_ex& e) {
            logger = spdlog::stderr_logger_mt("poolguard-stderr-fallback");
            logger->error("cannot open logfile {}: {}; logging to stderr", logfile, e.what());
        }
    } else {
        logger = spdlog::get("poolguard-stderr");
        if (!logger) logger = spdlog::stderr_logger_mt("poolguard-stderr");
    }
    logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %z [%P] %^%l%$ %v");
    logger->set_level(verbose >= 2   ? spdlog::level::trace
                      : verbose == 1 ? spdlog::level::debug
                                     : spdlog::level::info);
    logger->flush_on(spdlog::level::info);
    spdlog::set_default_logger(logger);
}

}  // namespace poolguard
