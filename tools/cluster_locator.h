// Finding the cluster a command talks to, in this order: --cluster, the
// CFS_CLUSTER environment variable, then the cfs-fuse mount that holds a PATH
// argument or --mount DIR (client/mount_table.h reads the mount table).
#pragma once

#include <string>
#include <vector>

#include "client/mount_table.h"
#include "common/status.h"

namespace cfs::tools {

using client::CfsMount;
using client::ListCfsMounts;
using client::MountOfPath;

struct Located {
  std::string cluster;   // "HOST:PORT[,...]"
  std::string cfs_path;  // the PATH argument as a path inside CFS ("" if none given)
};

// cluster_flag: value of --cluster ("" if not given); mount_flag: --mount;
// path: the command's PATH argument ("" if it has none). A PATH on a cfs mount
// becomes the path relative to the mountpoint; any other PATH is taken as a
// path inside CFS (and must then be absolute).
Result<Located> LocateCluster(const std::string& cluster_flag, const std::string& mount_flag,
                              const std::string& path);

}  // namespace cfs::tools
