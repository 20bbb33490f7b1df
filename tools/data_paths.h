// How this client reaches each S-worker: the transport the worker serves
// (from its registration) and the one a data channel really runs on
// (Channel::kind()), for `cfs status` and `cfs workers`.
#pragma once

#include <map>
#include <string>

#include "cfs.pb.h"
#include "client/client.h"

namespace cfs::tools {

struct DataPath {
  std::string serves;   // "tcp", "tcp+rdma"
  std::string reached;  // "tcp", "rdma", or "" when not probed / unreachable
  std::string error;    // why it could not be reached ("" if reached or down)
  // "serves tcp+rdma, reached over rdma"
  std::string Describe() const;
};

// Probes every S-worker marked up, in parallel (down ones are not tried).
std::map<uint32_t, DataPath> ProbeDataPaths(client::Client& c, const pb::ClusterMap& map);

}  // namespace cfs::tools
