// JSON forms of cluster objects, shared by the commands' --json output. Field
// names are stable: scripts and tests depend on them.
#pragma once

#include <nlohmann/json.hpp>

#include "cfs.pb.h"

namespace cfs::tools {

nlohmann::json LayoutJson(const pb::Layout& l);        // {unit, k, m, targets[]}
// {id, address, up, last_heartbeat_ms_ago, targets[], transport}; transport is
// what the worker serves: "tcp" or "tcp+rdma" (`cfs workers` adds reached_over).
nlohmann::json WorkerJson(const pb::WorkerInfo& w);
nlohmann::json TargetJson(const pb::TargetInfo& t);    // {id, worker, path, up, capacity, used, free, retired}
// "4+2 unit=1 MiB" (without targets).
std::string LayoutShape(const pb::Layout& l);

}  // namespace cfs::tools
