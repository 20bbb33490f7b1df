// cfs-fuse mounts from the mount table: /proc/mounts lists each as
// "HOST:PORT[,HOST:PORT] MNT fuse.cfs". The CLI and cfs_mount() use it to find
// the cluster behind a mount point or a path inside one.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace cfs::client {

struct CfsMount {
  std::string source;      // fsname: "HOST:PORT[,HOST:PORT]"
  std::string mountpoint;  // absolute
};

// All cfs-fuse mounts listed in mounts_file (default /proc/mounts).
std::vector<CfsMount> ListCfsMounts(const std::string& mounts_file = "/proc/mounts");

// The mount that holds local path `path` (longest mountpoint prefix), with the
// path inside the file system in *cfs_path ("/a/b"). NotFound if none.
Result<CfsMount> MountOfPath(const std::string& path, std::string* cfs_path);

}  // namespace cfs::client
