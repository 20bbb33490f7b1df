#include "data_paths.h"

#include <thread>
#include <vector>

namespace cfs::tools {

std::string DataPath::Describe() const {
  std::string s = "serves " + serves;
  if (!reached.empty()) return s + ", reached over " + reached;
  if (!error.empty()) return s + ", unreachable: " + error;
  return s;
}

std::map<uint32_t, DataPath> ProbeDataPaths(client::Client& c, const pb::ClusterMap& map) {
  std::map<uint32_t, DataPath> out;
  for (const auto& w : map.workers()) out[w.id()].serves = w.transport().empty() ? "tcp" : w.transport();
  // One thread per worker: a silent one costs a connect timeout, not N of them.
  std::vector<std::thread> probes;
  for (const auto& w : map.workers()) {
    if (!w.up()) continue;
    DataPath* p = &out[w.id()];  // map nodes are stable; each thread writes its own
    probes.emplace_back([&c, p, host = w.host(), port = static_cast<uint16_t>(w.port())] {
      auto kind = c.DataPathTo(host, port);
      if (kind.ok())
        p->reached = *kind;
      else
        p->error = kind.status().ToString();
    });
  }
  for (auto& t : probes) t.join();
  return out;
}

}  // namespace cfs::tools
