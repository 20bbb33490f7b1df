// Logging: spdlog, one line per event, "key=value" fields after the message so
// that logs are greppable and machine-parsable. Daemons log to a file under
// their log directory; tools log to stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace cfs {

// level: trace|debug|info|warn|error. file empty means stderr.
void InitLogging(const std::string& process, const std::string& file, const std::string& level);

// The logger the LOG_* macros use: the one InitLogging set, or (in programs
// that never call it: libcfs users, tests) one on stderr, because stdout
// belongs to the program (spdlog's own default writes to stdout).
spdlog::logger* Log();

}  // namespace cfs

#define LOG_TRACE(...) SPDLOG_LOGGER_TRACE(::cfs::Log(), __VA_ARGS__)
#define LOG_DEBUG(...) SPDLOG_LOGGER_DEBUG(::cfs::Log(), __VA_ARGS__)
#define LOG_INFO(...) SPDLOG_LOGGER_INFO(::cfs::Log(), __VA_ARGS__)
#define LOG_WARN(...) SPDLOG_LOGGER_WARN(::cfs::Log(), __VA_ARGS__)
#define LOG_ERROR(...) SPDLOG_LOGGER_ERROR(::cfs::Log(), __VA_ARGS__)
