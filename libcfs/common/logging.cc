#include "common/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>

#include <atomic>

namespace cfs {
namespace {
std::atomic<bool> g_initialized{false};
}  // namespace

spdlog::logger* Log() {
  static const bool once = [] {
    if (!g_initialized.load()) spdlog::set_default_logger(spdlog::stderr_color_mt("cfs-lib"));
    return true;
  }();
  (void)once;
  return spdlog::default_logger_raw();
}

void InitLogging(const std::string& process, const std::string& file, const std::string& level) {
  std::shared_ptr<spdlog::logger> logger;
  if (file.empty()) {
    logger = spdlog::stderr_color_mt(process);
  } else {
    logger = spdlog::basic_logger_mt(process, file, /*truncate=*/false);
  }
  // ts level process pid tid message
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%f%z %l %n pid=%P tid=%t %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  g_initialized = true;
  spdlog::set_default_logger(logger);
}

}  // namespace cfs
