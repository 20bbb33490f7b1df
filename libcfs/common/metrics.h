// Metrics in Prometheus text format, served over HTTP at /metrics.
// Counters and gauges are process-wide and cheap to bump from hot paths.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace cfs {

class Metrics {
 public:
  static Metrics& Get();
  // Returns a stable counter for name{labels}; labels like `method="READ"`.
  std::atomic<uint64_t>& Counter(const std::string& name, const std::string& labels = "",
                                 const std::string& help = "");
  // A gauge computed when scraped.
  void Gauge(const std::string& name, std::function<double()> fn, const std::string& help = "");
  std::string Render();

 private:
  struct Family {
    std::string help, type;
    std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>> series;
    std::function<double()> gauge;
  };
  std::mutex mu_;
  std::map<std::string, Family> families_;
};

// Serves Metrics::Get().Render() at http://host:port/metrics until destroyed.
class MetricsServer {
 public:
  MetricsServer();  // defined where Impl is complete
  ~MetricsServer();
  Status Start(const std::string& host, uint16_t port);
  uint16_t port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace cfs
