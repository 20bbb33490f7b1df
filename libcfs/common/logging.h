// Logging: spdlog, one line per event, "key=value" fields after the message so
// that logs are greppable and machine-parsable. Daemons log to a file under
// their log directory; tools log to stderr.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace cfs {

// level: trace|debug|info|warn|error. file empty means stderr.
void InitLogging(const std::string& process, const std::string& file, const std::string& level);

}  // namespace cfs

#define LOG_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
