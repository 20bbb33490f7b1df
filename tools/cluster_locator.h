// Finding the cluster a command talks to, in this order: --cluster, the
// CFS_CLUSTER environment variable, then the cfs-fuse mount that holds a PATH
// argument or --mount DIR (/proc/mounts lists it as "HOST:PORT MNT fuse.cfs").
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace cfs::tools {

struct CfsMount {
  std::string source;      // fsname: "HOST:PORT[,HOST:PORT]"
  std::string mountpoint;  // absolute
};

// All cfs-fuse mounts listed in mounts_file (default /proc/mounts).
std::vector<CfsMount> ListCfsMounts(const std::string& mounts_file = "/proc/mounts");

// The mount that holds local path `path` (longest mountpoint prefix), with the
// path inside the file system in *cfs_path ("/a/b"). NotFound if none.
Result<CfsMount> MountOfPath(const std::string& path, std::string* cfs_path);

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
