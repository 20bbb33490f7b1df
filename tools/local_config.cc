#include "local_config.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "process_util.h"

namespace cfs::tools {

Status LocalConfig::Save(const std::string& dir) const {
  nlohmann::json j{{"format", 1},
                   {"workers", workers},
                   {"stripe", stripe()},
                   {"unit", unit},
                   {"transport", transport},
                   {"rdma_device", rdma_device},
                   {"bind", bind},
                   {"mount", mount},
                   {"fuse_options", fuse_options},
                   {"log_level", log_level},
                   {"heartbeat_timeout_ms", heartbeat_timeout_ms},
                   {"rebuild_after_s", rebuild_after_s},
                   {"rebuild_rate", rebuild_rate},
                   {"scrub_interval_s", scrub_interval_s},
                   {"meta_port", meta_port},
                   {"meta_metrics_port", meta_metrics_port},
                   {"worker_ports", worker_ports},
                   {"worker_metrics_ports", worker_metrics_ports}};
  return WriteFileAtomic(LocalPaths{dir}.config(), j.dump(2) + "\n");
}

Result<LocalConfig> LocalConfig::Load(const std::string& dir) {
  std::string path = LocalPaths{dir}.config();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound(path + " does not exist");
  auto text = ReadWholeFile(path);
  if (!text.ok()) return text.status();
  auto j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + ": not valid JSON");
  LocalConfig c;
  try {
    c.workers = j.at("workers").get<int>();
    std::string stripe = j.at("stripe").get<std::string>();
    if (std::sscanf(stripe.c_str(), "%u+%u", &c.k, &c.m) != 2)
      return Status::Corruption(path + ": bad stripe " + stripe);
    c.unit = j.at("unit").get<uint64_t>();
    c.transport = j.value("transport", "tcp");
    c.rdma_device = j.value("rdma_device", "");
    c.bind = j.value("bind", "127.0.0.1");
    c.mount = j.at("mount").get<std::string>();
    c.fuse_options = j.value("fuse_options", "");
    c.log_level = j.value("log_level", "info");
    c.heartbeat_timeout_ms = j.value("heartbeat_timeout_ms", int64_t{-1});
    c.rebuild_after_s = j.value("rebuild_after_s", int64_t{-1});
    c.rebuild_rate = j.value("rebuild_rate", "");
    c.scrub_interval_s = j.value("scrub_interval_s", int64_t{-1});
    c.meta_port = j.at("meta_port").get<uint16_t>();
    c.meta_metrics_port = j.value("meta_metrics_port", uint16_t{0});
    c.worker_ports = j.at("worker_ports").get<std::vector<uint16_t>>();
    c.worker_metrics_ports = j.value("worker_metrics_ports", std::vector<uint16_t>{});
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": " + e.what());
  }
  if (c.workers < 1 || static_cast<int>(c.worker_ports.size()) != c.workers)
    return Status::Corruption(path + ": worker count and worker_ports disagree");
  c.worker_metrics_ports.resize(c.workers, 0);
  return c;
}

}  // namespace cfs::tools
